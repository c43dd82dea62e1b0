#!/usr/bin/env bash
# Installs the project into ./.venv (CPU PyTorch unless a torch is already there).
# Usage: ./install.sh            (set VENV=... to use another folder)
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VENV:-.venv}"
# Debian packages: Chromium (the browser test drives it, never a downloaded browser),
# HAProxy (deploy/haproxy.cfg in front of several workers, and its test), and the PortAudio
# library (`moshi chat` and `moshi speak --play`) and a sound server to test it with.
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v haproxy >/dev/null || missing+=(haproxy)
ldconfig -p 2>/dev/null | grep -q libportaudio || missing+=(libportaudio2)
# PulseAudio and ALSA's pulse plugin: tests/cli/test_sound_card.py runs moshi chat through them.
command -v pulseaudio >/dev/null || missing+=(pulseaudio pulseaudio-utils)
[ -e /usr/lib/x86_64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so ] || missing+=(libasound2-plugins)
# The training corpus (moshi data build) speaks with Debian's synthesisers and sox.
for tool in espeak-ng flite festival sox; do command -v $tool >/dev/null || missing+=($tool); done
[ -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ] || missing+=(festvox-us-slt-hts)
[ -d /usr/share/festival/voices/english/kal_diphone ] || missing+=(festvox-kallpc16k)
[ -d /usr/share/festival/voices/english/ked_diphone ] || missing+=(festvox-kdlpc16k)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
      echo "note: apt-get could not install ${missing[*]}" >&2
  else
    echo "note: not installed: ${missing[*]} (chromium: tests/web/test_browser.py, or set MOSHI_SKIP_BROWSER=1;" \
      "haproxy: tests/stream/test_deploy_haproxy.py; libportaudio2: the sound card for moshi chat and speak --play)" >&2
  fi
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# Install torch first and explicitly: letting pip resolve `torch>=2.4` on its own can pull
# a multi-GB CUDA build.
"$VENV/bin/python" -c "import torch" 2>/dev/null || "$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[test,audio,eval]"
echo "installed into $VENV: $("$VENV/bin/python" -c 'import torch, moshi; print("torch", torch.__version__, "moshi", moshi.__version__)')"
