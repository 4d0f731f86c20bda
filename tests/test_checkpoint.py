import pytest
import torch

from kals_utils import KalsError, ModelConfig, RunConfig, build_model
from kals_utils.checkpoint import load_checkpoint, save_checkpoint
from kals_utils.files import atomic_torch_save


def _cfg(**kw):
    net = {k: kw.pop(k) for k in ("dim", "depth", "width", "out_act") if k in kw}
    return RunConfig(model=ModelConfig(**({"dim": 2, "depth": 3, "width": 5} | net)), **kw)


def test_roundtrip_weights_config_and_data(tmp_path):
    cfg = _cfg(image_shape=None, dataset="points2d")
    m = build_model(cfg.model, seed=3)
    x = torch.rand(4, 2)
    p = save_checkpoint(tmp_path / "a.pt", m, cfg, train_data=x, losses=[1.0, 0.5])
    ck = load_checkpoint(p)
    assert ck.config == cfg and ck.losses == [1.0, 0.5]
    assert torch.equal(ck.train_data, x)
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), ck.model.state_dict().values()))


def test_image_data_is_stored_as_exact_uint8(tmp_path):
    cfg = _cfg(dim=12, image_shape=(3, 2, 2), out_act="tanh", value_range=(-1.0, 1.0))
    x = torch.randint(0, 256, (5, 12)).float() / 255 * 2 - 1
    save_checkpoint(tmp_path / "b.pt", build_model(cfg.model), cfg, train_data=x)
    blob = torch.load(tmp_path / "b.pt", weights_only=True)
    assert blob["train_data"]["uint8"].dtype == torch.uint8
    assert torch.allclose(load_checkpoint(tmp_path / "b.pt").train_data, x, atol=1e-6)


def test_pickled_payload_is_refused_and_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    torch.save({"format": "kals-checkpoint", "config": {}, "payload": Evil()}, path)
    assert not marker.exists()
    with pytest.raises(KalsError, match="pickled"):
        load_checkpoint(path)
    assert not marker.exists()


def test_truncated_and_foreign_files(tmp_path):
    cfg = _cfg()
    p = save_checkpoint(tmp_path / "c.pt", build_model(cfg.model), cfg)
    data = p.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(KalsError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "trunc.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(KalsError, match="not a kals checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(KalsError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("field,value,word", [("width", 7, "width"), ("depth", 4, "depth"), ("dim", 3, "dim")])
def test_config_mismatch_names_the_field(tmp_path, field, value, word):
    cfg = _cfg()
    p = save_checkpoint(tmp_path / "d.pt", build_model(cfg.model), cfg)
    blob = torch.load(p, weights_only=True)
    blob["config"]["model"][field] = value
    torch.save(blob, p)
    with pytest.raises(KalsError, match=word):
        load_checkpoint(p)


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "keep.pt"
    atomic_torch_save({"a": 1}, p)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_torch_save({"a": Boom()}, p)
    assert torch.load(p, weights_only=True) == {"a": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["keep.pt"]


def test_format_1_checkpoints_still_load(tmp_path):
    """Format 1 (before the restructure) kept the net's fields flat in the config."""
    m = build_model(ModelConfig(2, 3, 5), seed=1)
    flat = {"dim": 2, "depth": 3, "width": 5, "out_act": "sigmoid", "value_range": [0.0, 1.0], "image_shape": None,
            "dataset": "points2d", "recipe": "paper", "epochs": 7}
    torch.save({"format": "kals-checkpoint", "version": 1, "config": flat, "state_dict": m.state_dict(),
                "losses": [0.1]}, tmp_path / "v1.pt")
    ck = load_checkpoint(tmp_path / "v1.pt")
    assert ck.config.model == ModelConfig(2, 3, 5) and ck.config.epochs == 7 and ck.config.dataset == "points2d"


def test_resume_state_stores_each_set_of_weights_once_and_resumes_the_same(tmp_path):
    from kals_utils import points, save_run, train_run
    from kals_utils.pipeline import load_run
    data = points(torch.rand(64, 2, generator=torch.Generator().manual_seed(0)), dim=2)
    run = train_run(data, depth=3, width=16, epochs=30, seed=0, device="cpu", progress=False, note=None)
    path = save_run(run, tmp_path / "r.pt")
    blob = torch.load(path, weights_only=True)["train_state"]
    assert "best_state_dict" not in blob and "best_state_dict" in blob["same_as_weights"]
    ck = load_checkpoint(path)
    best, last = ck.train_state["best_state_dict"], ck.train_state["last_state_dict"]
    assert all(torch.equal(best[k], v) for k, v in run.result.train_state["best_state_dict"].items())
    assert all(torch.equal(last[k], v) for k, v in run.result.train_state["last_state_dict"].items())
    a = train_run(data, depth=3, width=16, epochs=5, seed=0, device="cpu", progress=False, note=None,
                  resume=run.result.train_state)
    b = train_run(data, depth=3, width=16, epochs=5, seed=0, device="cpu", progress=False, note=None,
                  resume=load_run(path, device="cpu").result.train_state)
    assert a.result.losses == b.result.losses and len(a.result.losses) == 35
