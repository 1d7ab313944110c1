"""Accuracy on a quiet microphone: the same held-out clips at their recorded level and 10-40 dB lower.

    .venv/bin/python benchmarks/quiet_input.py --models assets/model [runs/X ...] \
        [--data ../shared/data/speech_commands] [--split test] [--gains-db 0 -10 -20 -30 -40]

The gain is applied to the mel band power, which is what scaling the samples does (the frontend is
linear up to its power and its log floor, which stays where it is). Prints, per model and gain, the
12-class accuracy and the accuracy on the ten command words' clips, and the change from 0 dB.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audio.augment import apply_gain                  # noqa: E402
from model import feature_data                         # noqa: E402
from model.checkpoint import load_checkpoint           # noqa: E402
from model.evaluate import feature_posteriors          # noqa: E402
from model.labels import COMMANDS                      # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["assets/model"])
    parser.add_argument("--data", default="../shared/data/speech_commands")
    parser.add_argument("--split", default="test")
    parser.add_argument("--gains-db", nargs="+", type=float, default=[0, -10, -20, -30, -40])
    args = parser.parse_args()
    folder = feature_data.open_folder(args.data)
    features = {}
    for path in args.models:
        model = load_checkpoint(path)
        key = (model.frontend,)
        if key not in features:
            clips, _ = feature_data.eval_features(folder, args.split, model.frontend)
            features[key] = clips
        clips = features[key]
        is_command = np.isin(np.asarray(model.labels)[clips.labels], COMMANDS)
        base = None
        for gain_db in args.gains_db:
            feats = torch.as_tensor(clips.feats).float()
            if gain_db:
                feats = apply_gain(feats, torch.full((len(feats),), gain_db), model.frontend)
            predicted = feature_posteriors(model.network, feats).argmax(1)
            right = predicted == clips.labels
            all_acc, cmd_acc = right.mean(), right[is_command].mean()
            base = base or (all_acc, cmd_acc)
            print(f"{path:<28} {gain_db:+5.0f} dB  12-class {all_acc:.4f} ({all_acc - base[0]:+.4f})  "
                  f"commands {cmd_acc:.4f} ({cmd_acc - base[1]:+.4f})  [{len(right)} clips, "
                  f"{int(is_command.sum())} command clips, {args.split}]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
