
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
    with ``01_synthetic_1d`` executed there by ``kals_utils.book.execute`` at SMOKE sizes (its GIF
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
