"""``python -m kals_utils.book ...``: the book's command line at its usual address; the book itself is
:mod:`kals_utils.faces.book`."""
import sys

from .faces.book import main

if __name__ == "__main__":
    sys.exit(main())
