"""A word before a slow choice (issue #35): ``bf16`` asked for on a device without native bf16 gets
one line — in the command line's output, the panel's status and warning, and what a notebook's
train_run / sample_run print — saying it will be emulated and slower, and that auto picks fp32."""

import numpy as np
import pytest

from kals_utils import pipeline, points
from kals_utils import precision as P
from kals_utils.faces.cli import main
from kals_utils.faces.panel import Panel

WORDS = ("bf16 will be emulated", "slower than in fp32", "auto picks fp32 here")


def said(text: str) -> bool:
    return all(w in text for w in WORDS)


@pytest.fixture(params=[False, True], ids=["emulated", "native"])
def native(request, monkeypatch):
    monkeypatch.setattr(P, "bf16_native", lambda device: request.param)
    return request.param


def test_the_note_is_one_line_for_bf16_only(native):
    note = P.precision_note("bf16", "cpu")
    assert said(note) != native and "\n" not in note
    assert "AVX512-BF16 or AMX" in note or native
    assert P.precision_note("auto", "cpu") == P.precision_note("fp32", "cpu") == P.precision_note("fp16", "cpu") == ""


def test_the_command_line_says_it(tmp_path, capsys, native):
    ck = tmp_path / "p.pt"
    assert main(["train", "--data", "points1d", "--depth", "2", "--width", "4", "--epochs", "3", "--precision", "bf16",
                 "--out", str(ck), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert said(out) != native and sum(said(line) for line in out.splitlines()) == (0 if native else 1)
    assert main(["sample", "--checkpoint", str(ck), "--chains", "3", "--steps", "2", "--precision", "bf16"]) == 0
    assert said(capsys.readouterr().out) != native
    assert main(["train", "--data", "points1d", "--depth", "2", "--width", "4", "--epochs", "3", "--precision", "auto",
                 "--out", str(ck), "--no-progress"]) == 0
    assert not said(capsys.readouterr().out)  # auto stays silent: it picks fp32 where bf16 is emulated


def test_the_panel_says_it(tmp_path, native):
    def render(run, walk):
        return np.zeros((len(walk.steps), 4, 4, 3), np.uint8)
    p = Panel(points(dim=2), render=render, out_dir=tmp_path, depth=2, width=4, epochs=3, chains=3, steps=2,
              device="cpu", precision="auto")
    assert not said(p.warning)
    statuses = []
    p.observe(lambda name: statuses.append((p.status, p.status_kind)) if name == "status" else None)
    p.set(precision="bf16")
    assert said(p.warning) != native  # the moment it is chosen, before any training
    p.train()
    assert p.run is not None and p.run.config.precision == "bf16"
    start = statuses[0]
    assert start[0].startswith("training") and said(start[0]) != native and (start[1] == "warn") != native
    p.set(precision="auto")
    assert not said(p.warning)


def test_a_notebook_sees_it_from_train_run_and_sample_run(capsys, native):
    run = pipeline.train_run(points(dim=1), depth=2, width=4, epochs=3, device="cpu", precision="bf16", progress=False)
    assert said(capsys.readouterr().out) != native
    pipeline.sample_run(run, chains=3, steps=2, precision="bf16")
    assert said(capsys.readouterr().out) != native
    pipeline.train_run(points(dim=1), depth=2, width=4, epochs=3, device="cpu", precision="bf16", progress=False,
                       note=None)
    assert not said(capsys.readouterr().out)  # note=None: silent (the panel shows it its own way)
