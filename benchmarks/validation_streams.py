"""Compare models on streams of validation speakers only (model selection; test speakers untouched).

    .venv/bin/python benchmarks/validation_streams.py --data ../shared/data/speech_commands \
        --models assets/model runs/a runs/b [--seeds 0 1] [--seconds 600]

For each model: the detector grid of `speechcmd tune-detector` on the validation streams pooled
(every seed's stream, one score), the best setting by the same objective, and its figures. Nothing
here reads the test split.
"""
from __future__ import annotations

import argparse
import itertools
import json

from model.checkpoint import load_checkpoint
from model.detector import DetectorConfig
from model.stream_eval import StreamConfig, StreamScore, make_stream, score_stream
from model.tune import SMOOTHING_MS, SUPPRESSION_MS, THRESHOLDS, objective, replay, stream_posteriors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args()
    streams = None
    for path in args.models:
        model = load_checkpoint(path)
        if streams is None:
            streams = [make_stream(args.data, "validation", StreamConfig(seconds=args.seconds, seed=seed), model.frontend)
                       for seed in args.seeds]
        posteriors = [stream_posteriors(model, samples) for samples, _ in streams]
        best = None
        for smoothing, suppression, threshold in itertools.product(SMOOTHING_MS, SUPPRESSION_MS, THRESHOLDS):
            cfg = DetectorConfig(smoothing_ms=smoothing, threshold=float(threshold), suppression_ms=suppression)
            scores = [score_stream(replay(model, p, cfg), spans, args.seconds)
                      for p, (_, spans) in zip(posteriors, streams)]
            pooled = StreamScore(*(sum(getattr(s, f) for s in scores) for f in
                                   ("words", "matched", "correct", "wrong", "false_positives", "hours"))).as_dict()
            if best is None or objective(pooled) > objective(best[1]):
                best = (cfg, pooled)
        cfg, score = best
        print(json.dumps({"model": path, "objective": round(objective(score), 2), "detector": cfg.to_dict(),
                          **{k: round(v, 2) if isinstance(v, float) else v for k, v in score.items()}}))


if __name__ == "__main__":
    main()
