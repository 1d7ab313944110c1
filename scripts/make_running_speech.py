#!/usr/bin/env python3
"""Writes a model folder's running speech (`running_speech.npz`): log-mel frames of talk with no
command in it, one stream, on which `speechcmd enroll` counts a personal model's false alarms against
the base model's (model/enroll.py `hold_alarms`).

    .venv/bin/python scripts/make_running_speech.py --model my_model my_talk/   # files or folders

Never the recordings that measure false alarms. The shipped model carries none: on its training coffee
orders the check did not foretell the held-out orders' alarms (docs/ENROLL.md, "An alarm check at
enrollment"), so scripts/train_shipped_model.sh does not run this.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np                                  # noqa: E402
import torch                                        # noqa: E402

from audio.features import LogMel                   # noqa: E402
from audio.io import find_audio_files, read_audio   # noqa: E402
from model.checkpoint import read_model_spec        # noqa: E402
from model.enroll import save_running_speech        # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("recordings", nargs="+", help="audio files or folders of running speech with no command")
    args = parser.parse_args()
    frontend = read_model_spec(args.model).frontend
    files = find_audio_files([Path(p) for p in args.recordings])
    samples = np.concatenate([read_audio(f, frontend.sample_rate_hz) for f in files])
    with torch.no_grad():
        frames = LogMel(frontend)(torch.from_numpy(samples)[None])[0].numpy()
    path = save_running_speech(args.model, frames, [Path(f).name for f in files])
    print(f"wrote {path}: {len(files)} recordings, {samples.size / frontend.sample_rate_hz / 60:.1f} min, "
          f"{path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
