"""Clip accuracy of several models' averaged posteriors (an ensemble), next to each model alone.

    .venv/bin/python benchmarks/eval_ensemble.py --data ../shared/data/speech_commands MODEL_DIR MODEL_DIR...

Prints validation and (unless `--splits validation`) test accuracy for each model and for the average of the first k models, k = 2..n.
All models must share the frontend (they are fed the same log-mel frames).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from audio.features import LogMel  # noqa: E402
from model.checkpoint import load_checkpoint  # noqa: E402
from model.data import load_eval_split  # noqa: E402
from model.evaluate import final_frame_posteriors  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--splits", nargs="+", choices=("validation", "test"), default=["validation", "test"],
                        help="validation only while choosing; test only for what is kept")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = [load_checkpoint(path) for path in args.models]
    frontend = models[0].frontend
    if any(m.frontend != frontend for m in models):
        sys.exit("eval_ensemble: the models have different frontends")
    log_mel = LogMel(frontend)
    for split in args.splits:
        clips = load_eval_split(args.data, split, frontend)
        waves = clips.waves.astype(np.float32) / 32767.0
        posteriors = [final_frame_posteriors(m.network, log_mel, waves) for m in models]
        for path, p in zip(args.models, posteriors):
            print(f"{split:<10} {path}: {(p.argmax(1) == clips.labels).mean():.4f}")
        for k in range(2, len(models) + 1):
            mean = np.mean(posteriors[:k], axis=0)
            print(f"{split:<10} average of the first {k}: {(mean.argmax(1) == clips.labels).mean():.4f}")


if __name__ == "__main__":
    main()
