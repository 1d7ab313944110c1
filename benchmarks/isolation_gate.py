"""How much `_unknown_` speech precedes a detection: correct ones on validation streams vs false alarms
on speech without commands (a measured lead for an "isolated word" gate, not part of the detector).

    .venv/bin/python benchmarks/isolation_gate.py --data ../shared/data/speech_commands \
        --false-alarm-audio runs/coffee_train [--model DIR] [--seeds 0 1]

For every event of the model's own detector with the gate turned off (the shipped config.json has
it on, which would hide exactly the events this measures): the mean `_unknown_` posterior from 1000
to 400 ms before it fired. Uses validation streams and the given negatives only (pass training negatives,
not held-out test audio).
"""
from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from audio.io import find_audio_files, read_audio
from model.checkpoint import default_model_dir, load_checkpoint
from model.labels import UNKNOWN
from model.stream_eval import StreamConfig, make_stream, match_events
from model.tune import replay, stream_posteriors

BEFORE_MS = (1000, 400)


def unknown_before(posteriors: np.ndarray, fired_s: float, unknown: int, hop_ms: float) -> float:
    frame = int(round(fired_s * 1000 / hop_ms))
    start, end = (max(0, frame - int(ms / hop_ms)) for ms in BEFORE_MS)
    return float(posteriors[start:max(start + 1, end), unknown].mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--false-alarm-audio", nargs="+", required=True)
    parser.add_argument("--model", default=str(default_model_dir()))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    args = parser.parse_args()
    model = load_checkpoint(args.model)
    ungated = replace(model.detector, isolation_gate=0.0)
    unknown, hop_ms = model.labels.index(UNKNOWN), model.frontend.hop_ms
    hits = []
    for seed in args.seeds:
        samples, spans = make_stream(args.data, "validation", StreamConfig(seed=seed), model.frontend)
        posteriors = stream_posteriors(model, samples)
        for event, word in match_events(replay(model, posteriors, ungated), spans):
            if word is not None and word.label == event.label:
                hits.append(unknown_before(posteriors, event.time_s, unknown, hop_ms))
    fs = model.frontend.sample_rate_hz
    negatives = np.concatenate([read_audio(p, fs) for p in find_audio_files(args.false_alarm_audio)])
    posteriors = stream_posteriors(model, negatives)
    alarms = [unknown_before(posteriors, e.time_s, unknown, hop_ms) for e in replay(model, posteriors, ungated)]
    hits = np.array(hits)
    print(f"correct detections on validation streams: {hits.size}; unknown before them: median "
          f"{np.median(hits):.2f}, 90th percentile {np.percentile(hits, 90):.2f}, 95th {np.percentile(hits, 95):.2f}")
    print(f"alarms on the negatives: {len(alarms)}; unknown before them: {sorted(np.round(alarms, 2).tolist(), reverse=True)}")
    for gate in (0.3, 0.5, 0.7):
        print(f"gate {gate}: drops {np.mean(hits > gate):.1%} of correct detections, "
              f"{sum(a > gate for a in alarms)} of {len(alarms)} alarms")


if __name__ == "__main__":
    main()
