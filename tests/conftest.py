
import pytest
import torch

# tiny nets gain nothing from a second thread, and two threads thrash on a loaded 2-core machine
torch.set_num_threads(1)


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
