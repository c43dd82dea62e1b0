#!/usr/bin/env bash
# Installs the project into ./.venv (CPU PyTorch unless a torch is already there).
# Usage: ./install.sh            (set VENV=... to use another folder)
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VENV:-.venv}"
# The browser end-to-end test drives Debian's Chromium (never a downloaded browser).
if ! command -v chromium >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    echo "note: no chromium here; tests/web/test_browser.py needs it (or set MOSHI_SKIP_BROWSER=1)" >&2
  fi
fi
# The training corpus (moshi data build) speaks with Debian's synthesisers and sox.
if ! command -v espeak-ng >/dev/null || ! command -v flite >/dev/null || ! command -v festival >/dev/null \
  || ! command -v sox >/dev/null || [ ! -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq espeak-ng flite festival festvox-us-slt-hts sox >/dev/null
  else
    echo "note: moshi data build needs espeak-ng flite festival festvox-us-slt-hts sox (apt-get, as root)" >&2
  fi
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# Install torch first and explicitly: letting pip resolve `torch>=2.4` on its own can pull
# a multi-GB CUDA build.
"$VENV/bin/python" -c "import torch" 2>/dev/null || "$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[test,eval]"
echo "installed into $VENV: $("$VENV/bin/python" -c 'import torch, moshi; print("torch", torch.__version__, "moshi", moshi.__version__)')"
