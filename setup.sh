#!/usr/bin/env bash
# The single install path for kals.
#   bash setup.sh           -> .venv with torch, torchvision, numpy, matplotlib, ipywidgets, imageio,
#                              jupyter, papermill, kals_utils (editable) and a Jupyter kernel named "kals"
#   bash setup.sh --test    -> also test tools (pytest, playwright), the docs tools (sphinx, myst-nb,
#                              sphinx-book-theme), the diffusion baseline (diffusers, the `baseline`
#                              extra), the packaged image sets (scikit-image, scikit-learn, the
#                              `samples` extra) and, as root on Debian, the system packages the tests use
#                              (chromium, fashion-mnist)
#   bash setup.sh --conda   -> use environment.yml with conda instead of a venv (env "kals")
# Re-running is cheap: a stamp file skips pip when nothing changed.
set -euo pipefail
cd "$(dirname "$0")"

TEST=0; CONDA=0
for a in "$@"; do
  case "$a" in
    --test) TEST=1 ;;
    --conda) CONDA=1 ;;
    *) echo "setup.sh: unknown option $a (use --test and/or --conda)" >&2; exit 2 ;;
  esac
done

if [ "$CONDA" = 1 ]; then
  command -v conda >/dev/null || { echo "setup.sh: --conda given but conda is not on PATH" >&2; exit 2; }
  conda env update -n kals -f environment.yml
  conda run -n kals python -m pip install -e . --no-deps
  conda run -n kals python -m ipykernel install --user --name kals --display-name "Python (kals)"
  echo "setup.sh: conda env 'kals' ready (conda activate kals)"
  exit 0
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python

# A stamp per flavour records what was installed; the test install covers the plain one too.
# (Plain if/else, not `$( [ ... ] && ...)`: under `set -e` a false test there ends the script.)
if [ "$TEST" = 1 ]; then extras="[test]"; stamp=.venv/.kals-stamp-test; else extras=""; stamp=.venv/.kals-stamp; fi
want=$(cat pyproject.toml setup.sh | sha256sum | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$TEST" = 0 ] && [ "$(cat .venv/.kals-stamp-test 2>/dev/null || true)" = "$want" ]; then
  have=$want
fi
if [ "$have" != "$want" ]; then
  "$VPY" -m pip install -q --disable-pip-version-check --upgrade pip
  "$VPY" -m pip install -q --disable-pip-version-check -e ".${extras}"
  "$VPY" -m ipykernel install --sys-prefix --name kals --display-name "Python (kals)" >/dev/null
  echo "$want" > "$stamp"
fi

if [ "$TEST" = 1 ]; then
  # System packages for the tests: Debian's Chromium (browser tests, driven by Playwright without
  # downloading a browser) and Debian's real Fashion-MNIST IDX files. Needs root and apt-get.
  need=()
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
      echo "setup.sh: please install ${need[*]} (Debian packages) for the browser and data tests" >&2
    fi
  fi
fi
echo "setup.sh: ready (.venv/bin/python; kernel 'kals')"
