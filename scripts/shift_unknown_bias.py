"""Lower (or raise) a model's `_unknown_` output bias in place: a calibration step after the talk fine-tune.

    .venv/bin/python scripts/shift_unknown_bias.py MODEL_DIR [--shift -1.0] [--choose]

Why: training on hours of talk as `_unknown_` made the model readier to call any sound "other speech"
(commands and silence clips too). A lower `_unknown_` logit gives some of that back. `--choose` prints
the pooled accuracy of the validation clips (wav and images) for shifts 0 to -2 and applies the best
one; validation speakers only.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model import feature_data  # noqa: E402
from model.checkpoint import load_checkpoint  # noqa: E402
from model.evaluate import feature_posteriors  # noqa: E402
from model.labels import UNKNOWN  # noqa: E402

DATA = ("../shared/data/speech_commands", "../shared/data/speech_commands_logmel")
SHIFTS = (0.0, -0.25, -0.5, -0.75, -1.0, -1.5, -2.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--shift", type=float, default=-1.0)
    parser.add_argument("--choose", action="store_true", help="choose the shift on the validation clips")
    args = parser.parse_args()
    model = load_checkpoint(args.model)
    unknown = model.labels.index(UNKNOWN)
    shift = args.shift
    if args.choose:
        right = {s: 0 for s in SHIFTS}
        n = 0
        for data in DATA:
            folder = feature_data.open_folder(data)
            clips, _ = feature_data.eval_features(folder, "validation", model.frontend)
            # Log-posteriors are the logits less a per-clip constant: the same argmax under a shift.
            logits = np.log(feature_posteriors(model.network, clips.feats) + 1e-30)
            n += len(clips)
            for s in SHIFTS:
                shifted = logits.copy()
                shifted[:, unknown] += s
                right[s] += int((shifted.argmax(1) == clips.labels).sum())
        for s in SHIFTS:
            print(f"shift {s:+.2f}: pooled validation accuracy {right[s] / n:.4f}")
        shift = max(SHIFTS, key=lambda s: (right[s], -abs(s)))
    path = Path(args.model) / "model.safetensors"
    with safe_open(str(path), "np") as handle:
        metadata = handle.metadata()
    weights = load_file(str(path))
    weights["head.bias"][unknown] += shift
    save_file(weights, str(path), metadata=metadata)
    print(f"{args.model}: _unknown_ bias shifted by {shift:+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
