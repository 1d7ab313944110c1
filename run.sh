#!/usr/bin/env bash
# The main job. Sets everything up on first use, then starts the app. Extra arguments go to the app.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
scripts/setup.sh run
exec .venv/bin/speechcmd gui "$@"
