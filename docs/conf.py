"""Sphinx configuration of the kals documentation site.

Build (offline; nothing is fetched): ``python -m kals_utils.book build`` -> docs/_build/html.
The notebooks (docs/notebooks -> ../notebooks) are read with their committed outputs and never
executed here (``python -m kals_utils.book execute`` executes them); docs/saved_samples ->
../saved_samples serves the GIFs the notebooks and pages show.
"""

project = "kals"
author = "the kals authors"
copyright = "2024-2026, the kals authors (MIT licence)"

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "saved_samples/**"]
suppress_warnings = ["misc.highlighting_failure"]  # a notebook's ANSI-coloured text is not Python

# myst-nb: show the committed outputs as they are; run nothing; load no JavaScript from a CDN.
nb_execution_mode = "off"
nb_ipywidgets_js = {}
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# autodoc: the public API, from the docstrings (importing kals_utils imports torch, not the data).
autodoc_member_order = "bysource"
autodoc_typehints = "none"
napoleon_google_docstring = False

html_theme = "sphinx_book_theme"
html_title = "kals — Generative Kaleidoscopic Networks"
html_static_path = ["_static"]
html_css_files = ["custom.css"]   # code cells: 88 columns at 1280 px, wrapped on a phone (#33)
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "use_download_button": False,  # the notebooks live in the repository; nothing to download
    "use_fullscreen_button": False,
}
html_last_updated_fmt = None
