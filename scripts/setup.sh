#!/usr/bin/env bash
# Idempotent set-up used by ./run.sh and ./test.sh: system packages, then .venv with the project.
#   scripts/setup.sh run    packages the app needs
#   scripts/setup.sh test   the same plus the audio server the tests use as a virtual microphone
set -euo pipefail
mode="${1:-run}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# PortAudio for sounddevice; the libraries Qt's xcb and offscreen platforms load.
packages=(libportaudio2 libegl1 libgl1 libfontconfig1 libxkbcommon0 libxkbcommon-x11-0 libglib2.0-0
          libdbus-1-3 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0
          libxcb-shape0 libxcb-randr0 libxcb-xinerama0 libxcb-xkb1)
if [ "$mode" = test ]; then
    # espeak-ng: tests/test_synthesize_words.py runs the synthetic-voice script for real;
    # xvfb + xdotool: tests press keys into real windows on a real X server (actions, push-to-talk);
    # trayer: a system tray on that server (tests/test_tray.py); desktop-file-validate checks the launcher
    packages+=(pulseaudio pulseaudio-utils espeak-ng xvfb xdotool trayer desktop-file-utils)
fi

if command -v dpkg-query >/dev/null 2>&1; then
    missing=()
    for pkg in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ]; then
            echo "Installing system packages: ${missing[*]}"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        else
            echo "Missing system packages. Run this, then run this script again:" >&2
            echo "  sudo apt-get install -y ${missing[*]}" >&2
            exit 1
        fi
    fi
else
    echo "Note: not a Debian/Ubuntu system; make sure PortAudio and Qt's X11 libraries are installed." >&2
fi

python=""
for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
        python="$candidate"; break
    fi
done
if [ -z "$python" ] && [ ! -x .venv/bin/python ]; then
    echo "Python 3.11 is needed (python3.11 or python3 on PATH). On Debian/Ubuntu: sudo apt-get install -y python3.11 python3.11-venv" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    echo "Creating .venv"
    "$python" -m venv .venv
fi

# Reinstall only when the project's dependencies changed since the last successful install.
stamp=".venv/.setup-stamp"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x .venv/bin/speechcmd ]; then
    echo "Installing Python packages into .venv (first time: a few minutes; torch is large)"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[test]"
    echo "$want" > "$stamp"
fi
