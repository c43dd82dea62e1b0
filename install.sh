#!/usr/bin/env bash
# Installs the project into ./.venv (CPU PyTorch unless a torch is already there).
# Usage: ./install.sh            (set VENV=... to use another folder)
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VENV:-.venv}"
# Debian packages the tests drive: Chromium (the browser test, never a downloaded browser),
# HAProxy (deploy/haproxy.cfg in front of several workers).
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v haproxy >/dev/null || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "note: not installed: ${missing[*]} (tests/web/test_browser.py needs chromium, or set" \
      "MOSHI_SKIP_BROWSER=1; tests/stream/test_deploy_haproxy.py needs haproxy)" >&2
  fi
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# Install torch first and explicitly: letting pip resolve `torch>=2.4` on its own can pull
# a multi-GB CUDA build.
"$VENV/bin/python" -c "import torch" 2>/dev/null || "$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[test]"
echo "installed into $VENV: $("$VENV/bin/python" -c 'import torch, moshi; print("torch", torch.__version__, "moshi", moshi.__version__)')"
