
import pytest
import torch

# tiny nets gain nothing from a second thread, and two threads thrash on a loaded 2-core machine
torch.set_num_threads(1)


def _stop_heartbeat_without_hanging():
    """Work around a rare hang in jupyter_client's shutdown (seen here with jupyter_client 8.10 under
    papermill/nbclient, after a notebook had run: the heartbeat thread awaited a zmq recv that never
    came, and HBChannel.stop joined it forever; compare jupyter/jupyter_client#771). The thread is a
    daemon, so joining with a timeout and moving on loses nothing."""
    try:
        from jupyter_client.channels import HBChannel
    except ImportError:
        return

    def stop(self) -> None:
        self._running = False
        self._exit.set()
        self.join(timeout=10)
        self.close()

    HBChannel.stop = stop


_stop_heartbeat_without_hanging()


# The fast edit loop (issue #32): `pytest -m "not slow"` leaves these out; plain `pytest` (the README's
# test command, CI) runs everything. Slow: whole files (notebooks run in a kernel, the docs site, the
# browser), every test that needs the book's executed notebook or a browser, and, by name, the runs of
# a whole program or a long training (each 15-120 s on a loaded 2-core machine).
SLOW_FILES = {"test_notebooks.py", "test_docs.py", "test_browser.py"}
SLOW_FIXTURES = {"executed_smoke"}
SLOW_TESTS = {
    "test_readme.py": {"test_readme_blocks_run_verbatim", "test_docs_blocks_run_verbatim"},
    "test_setup.py": {"test_plain_setup_passes_on_a_ready_venv"},
    "test_train_sample.py": {"test_2d_four_points_over_five_seeds"},
    "test_versus.py": {"test_study_end_to_end_at_smoke_size", "test_benchmark_without_the_extra_prints_one_line"},
    "test_cli.py": {"test_demo_writes_gif_and_png"},
    "test_front_door.py": {"test_no_deprecation_warnings_from_kals"},
    "test_compare_archs.py": {"test_one_row_per_arch_and_seed_at_matched_size",
                              "test_tables_grids_gifs_and_panel_runs"},
}


def is_slow(item) -> bool:
    """Whether a collected test belongs to the slow tier (see SLOW_FILES, SLOW_FIXTURES, SLOW_TESTS)."""
    file = item.path.name
    return (file in SLOW_FILES or item.get_closest_marker("browser") is not None
            or bool(SLOW_FIXTURES & set(getattr(item, "fixturenames", ())))
            or getattr(item, "originalname", item.name) in SLOW_TESTS.get(file, ()))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if is_slow(item):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def tiny_folder(tmp_path):
    """A folder of 12 small RGB PNGs (8x8) with distinct content."""
    import numpy as np
    from PIL import Image
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"img{i:02d}.png")
    return folder


@pytest.fixture(scope="session")
def executed_smoke(tmp_path_factory):
    """A copy of the repository's notebooks/ and saved_samples/ (links to the files) in a temp folder,
    with ``01_synthetic_1d`` executed there by ``kals_utils.faces.book.execute`` at SMOKE sizes (its GIF
    written to that saved_samples/). Returns the temp folder; used by test_book and test_docs."""
    import os
    import shutil
    from pathlib import Path
    from kals_utils import book
    root = tmp_path_factory.mktemp("book")
    shutil.copytree(book.NB_DIR, root / "notebooks")
    (root / "saved_samples").mkdir()
    for f in book.SAMPLES.iterdir():
        os.symlink(f, root / "saved_samples" / f.name)
    book.execute("01_synthetic_1d", dest=root / "notebooks" / "01_synthetic_1d.ipynb", smoke=True,
                 env={"KALS_OUT": str(root / "saved_samples"), "OMP_NUM_THREADS": "1"})
    return root
