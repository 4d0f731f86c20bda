"""The recipe frontier study (issue #16) on a tiny labelled set: rows carry the knobs, the field's
metrics, their ceilings and whether the targets are met; the plot draws every row."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import fakedata  # noqa: E402

from kals_utils.data import load_data  # noqa: E402
from kals_utils.studies import recipe_frontier  # noqa: E402
from kals_utils.faces.plots import plot_frontier  # noqa: E402


def test_frontier_rows_and_plot(tmp_path):
    fakedata.write_mnist(tmp_path, n_train=60, n_test=30)
    data = load_data("mnist", root=tmp_path, subset=30, value_range=(-1, 1), image_size=8)
    rows = recipe_frontier(data, sigmas=((0.2, 0.8), (0.6, 1.2)), eps_values=(0.0, 0.1), depth=2, width=16,
                           epochs=20, chains=30, steps=5, device="cpu", data_root=tmp_path)
    assert [(r["sigma"], r["eps"]) for r in rows] == [((0.2, 0.8), 0.0), ((0.2, 0.8), 0.1), ((0.6, 1.2), 0.0),
                                                      ((0.6, 1.2), 0.1)]
    for r in rows:
        assert 0 <= r["precision"] <= 1 and 0 <= r["coverage"] <= 1 and 0 <= r["memorized"] <= 1
        assert r["ceil_coverage"] is not None and isinstance(r["meets"], bool)
    fig = plot_frontier(rows, marks={"paper": (0.0, 0.3)})
    ax = fig.axes[0]
    assert ax.get_xlim() == (0, 1) and len(ax.collections) >= 4
