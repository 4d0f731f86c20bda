"""Measures of a run, the second floor of the package (above the core helper, below the studies and
the faces): each module imports the core and the measures before it, nothing that draws.

- :mod:`.collapse`: how far the samples collapse onto few training points;
- :mod:`.prdc`: precision, recall, density, coverage, memorisation and Fréchet distance in a feature space;
- :mod:`.features`: the feature spaces (a small classifier per data set, cached);
- :mod:`.metrics`: nearest training neighbours, coverage, class bias, novelty, burn-in, the shared tolerances;
- :mod:`.attractors`: Jacobians of f, stable attractors and spurious fixed points;
- :mod:`.mixing`: how a walk's chains move between training points (hops, autocorrelation, continuity);
- :mod:`.basins`: basin maps, sequence replay, capacity;
- :mod:`.evaluate`: every measure of a run in one ``Evaluation`` (``evaluate_samples``, ``evaluate_run``);
- :mod:`.tables`: rows of runs as text tables.

Importing this package imports none of them; import the module you need
(``from kals_utils.measures.metrics import burn_in``) or use ``kals.<name>``.
"""
