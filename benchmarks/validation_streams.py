"""Compare models on streams of validation speakers only (model selection; test speakers untouched).

    .venv/bin/python benchmarks/validation_streams.py --data ../shared/data/speech_commands \
        --models assets/model runs/a runs/b [--seeds 0 1] [--seconds 600]

For each model: `speechcmd tune-detector`'s grid search on the validation streams pooled (every
seed's stream, one score), the best setting by its objective, and its figures. Nothing here reads
the test split.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from audio.io import find_audio_files, read_audio
from model.checkpoint import load_checkpoint
from model.stream_eval import StreamConfig, make_stream, score_stream
from model.tune import grid_search, objective, replay, stream_posteriors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--false-alarm-audio", nargs="*", default=[],
                        help="speech without commands, NOT held-out test audio (e.g. runs/coffee_train)")
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args()
    streams = None
    fs = 16000
    negatives = (np.concatenate([read_audio(p, fs) for p in find_audio_files(args.false_alarm_audio)])
                 if args.false_alarm_audio else None)
    for path in args.models:
        model = load_checkpoint(path)
        assert model.frontend.sample_rate_hz == fs
        if streams is None:
            streams = [make_stream(args.data, "validation", StreamConfig(seconds=args.seconds, seed=seed), model.frontend)
                       for seed in args.seeds]
        pooled = [(stream_posteriors(model, samples), spans, args.seconds) for samples, spans in streams]
        cfg, score, _ = grid_search(model, pooled)
        alarms = {}
        if negatives is not None:
            fa = score_stream(replay(model, stream_posteriors(model, negatives), cfg), [], negatives.size / fs)
            alarms = {"false_alarm_audio_per_hour": round(fa.as_dict()["false_alarms_per_hour"], 1)}
        print(json.dumps({"model": path, "objective": round(objective(score), 2), "detector": cfg.to_dict(), **alarms,
                          **{k: round(v, 2) if isinstance(v, float) else v for k, v in score.items()}}))


if __name__ == "__main__":
    main()
