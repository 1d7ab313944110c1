"""Accuracy on a quiet microphone: the same held-out clips at their recorded level and 10-40 dB lower.

    .venv/bin/python benchmarks/quiet_input.py --models assets/model [runs/X ...] \
        [--data ../shared/data/speech_commands] [--split test] [--gains-db 0 -10 -20 -30 -40]

The clips are made quieter as a 16-bit microphone with its gain turned down records them: the samples
are scaled and rounded to 16 bits again, so the recording's own noise gets quieter with the speech
while the rounding noise stays where it is (about -101 dBFS), then they go through each model's
frontend. (Until 2026-12-07 the gain was applied to the mel band power with no rounding: about the
same figures for the fixed-normalisation models, but a frontend that undid the gain exactly would
have looked perfect.) Prints, per model and gain, the 12-class accuracy and the accuracy on the ten
command words' clips, and the change from 0 dB.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model import data, feature_data                   # noqa: E402
from model.checkpoint import load_checkpoint           # noqa: E402
from model.evaluate import feature_posteriors          # noqa: E402
from model.labels import COMMANDS                      # noqa: E402


def quieter(waves: np.ndarray, gain_db: float) -> np.ndarray:
    """int16 clips recorded `gain_db` quieter: scaled, then rounded to 16 bits."""
    return np.round(waves.astype(np.float64) * 10.0 ** (gain_db / 20.0)).astype(np.int16)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["assets/model"])
    parser.add_argument("--data", default="../shared/data/speech_commands")
    parser.add_argument("--split", default="test")
    parser.add_argument("--gains-db", nargs="+", type=float, default=[0, -10, -20, -30, -40])
    args = parser.parse_args()
    clips = None
    for path in args.models:
        model = load_checkpoint(path)
        if clips is None:   # the clips `evaluate` scores (words and its silence clips), as int16 audio
            if feature_data.is_image_folder(args.data):
                raise SystemExit(f"{args.data}: log-mel images have no audio to make quieter; use the wav set")
            clips = data.load_eval_split(args.data, args.split, model.frontend)
        labels = np.asarray(clips.labels)
        is_command = np.isin(np.asarray(model.labels)[labels], COMMANDS)
        base = None
        for gain_db in args.gains_db:
            feats = torch.as_tensor(feature_data.wav_features(quieter(clips.waves, gain_db), model.frontend)).float()
            right = feature_posteriors(model.network, feats).argmax(1) == labels
            all_acc, cmd_acc = right.mean(), right[is_command].mean()
            base = base or (all_acc, cmd_acc)
            print(f"{path:<28} {gain_db:+5.0f} dB  12-class {all_acc:.4f} ({all_acc - base[0]:+.4f})  "
                  f"commands {cmd_acc:.4f} ({cmd_acc - base[1]:+.4f})  [{len(right)} clips, "
                  f"{int(is_command.sum())} command clips, {args.split}]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
