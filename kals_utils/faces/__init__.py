"""The faces, the top floor of the package: what a person sees and types — figures, GIFs, the
control panel, the image notebooks' steps, the command line, the book. They stand on everything
below (the core helper, the measures, the studies) and nothing stands on them.

- :mod:`.plots`: matplotlib figures (``from kals_utils import plots``);
- :mod:`.export`: a run's walk as GIF frames, the studies' GIFs;
- :mod:`.pace`: the panel's clock (training in slices, progress, long-training notes);
- :mod:`.panel`: the control panel's controller, plain Python (its controls in :mod:`.controls`, its
  Train and Stop buttons in :mod:`.training`); :mod:`.widgets` its ipywidgets view;
- :mod:`.walkthrough`: ``ImageNotebook``, the image notebooks' steps;
- :mod:`.cli`: ``python -m kals_utils`` (and the ``kals`` command);
- :mod:`.results`: the Results pages' tables from the notebooks' committed data;
- :mod:`.book`: ``python -m kals_utils.book`` — execute, check and build the notebooks and the docs.

Importing this package imports none of them (nothing here draws until a face is used).
"""
