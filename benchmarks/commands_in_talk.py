"""The isolation rule measured: commands said on their own fire, commands inside a sentence do not.

    .venv/bin/python benchmarks/commands_in_talk.py --data ../shared/data/speech_commands --split test \
        --talk runs/talk_synth/test runs/coffee_heldout --models assets/model runs/v7 [--minutes 20] [--seed 0]

Builds streams of running speech (the --talk files, cut into 3-8 s stretches) with commands of the
--split speakers between them, half of them said on their own (0.5-1 s of pause before and after, the
1 s clip as recorded) and half inside the talk (the word cut to its sound, 0-50 ms from the talk on
either side, as in "please stop the music"). Each model runs at its own shipped detector settings.
Reports: isolated commands found with the right label, embedded commands that fired (any event from
the word's start to 750 ms after it), and other alarms per hour of the talk.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from audio.io import find_audio_files, read_audio
from model import data
from model.checkpoint import load_checkpoint
from model.labels import COMMANDS
from model.stream_eval import WordSpan, match_events
from model.tune import replay, stream_posteriors

FS = 16000


def trim_to_sound(samples: np.ndarray, below_peak_db: float = 30.0) -> np.ndarray:
    """The stretch of a clip whose 10 ms frames are within `below_peak_db` of its loudest."""
    frames = samples[: samples.size // 160 * 160].reshape(-1, 160)
    energy_db = 10 * np.log10((frames ** 2).mean(1) + 1e-12)
    loud = np.flatnonzero(energy_db >= energy_db.max() - below_peak_db)
    return samples[loud[0] * 160:(loud[-1] + 1) * 160]


def rms(x: np.ndarray) -> float:
    return float(np.sqrt((x ** 2).mean()) + 1e-9)


def make_stream(commands, talk: list[np.ndarray], seconds: float, rng: np.random.Generator):
    """-> (samples, isolated spans, embedded spans, talk seconds)."""
    parts, isolated, embedded = [], [], []
    at = 0
    talk_samples = 0

    def add(x):
        nonlocal at
        parts.append(x.astype(np.float32))
        at += x.size

    while at < seconds * FS:
        source = talk[rng.integers(len(talk))]
        n = int(rng.uniform(3, 8) * FS)
        start = int(rng.integers(0, max(1, source.size - n)))
        stretch = source[start:start + n]
        level = 0.05 / rms(stretch)
        add(stretch * level)
        talk_samples += stretch.size
        path, label = commands[rng.integers(len(commands))]
        clip = data.read_audio(path, FS)
        if rng.random() < 0.5:
            gap = lambda: np.zeros(int(rng.uniform(0.5, 1.0) * FS))  # noqa: E731
            add(gap())
            word = trim_to_sound(clip)
            clip = clip * (0.05 / rms(word) * 10 ** (rng.uniform(-3, 3) / 20))
            isolated.append(WordSpan(label, at / FS * 1000, (at + clip.size) / FS * 1000))
            add(clip)
            add(gap())
        else:
            add(np.zeros(int(rng.uniform(0, 0.05) * FS)))
            word = trim_to_sound(clip)
            word = word * (0.05 / rms(word) * 10 ** (rng.uniform(-3, 3) / 20))
            embedded.append(WordSpan(label, at / FS * 1000, (at + word.size) / FS * 1000))
            add(word)
            add(np.zeros(int(rng.uniform(0, 0.05) * FS)))
    samples = np.concatenate(parts)
    samples += rng.normal(0, 0.001, samples.size).astype(np.float32)   # a quiet room, never digital silence
    return np.clip(samples, -1, 1), isolated, embedded, talk_samples / FS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", choices=("validation", "test"), default="validation")
    parser.add_argument("--talk", nargs="+", required=True)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    root = Path(args.data)
    commands = [(root / p, label) for p, label in data.list_splits(root)[args.split] if label in COMMANDS]
    talk = [read_audio(p, FS) for p in find_audio_files(args.talk)]
    samples, isolated, embedded, talk_s = make_stream(commands, talk, args.minutes * 60, rng)
    for path in args.models:
        model = load_checkpoint(path)
        events = replay(model, stream_posteriors(model, samples), model.detector)
        found = sum(word is not None and event.label == word.label for event, word in match_events(events, isolated))
        fired_inside = sum(word is not None for _, word in match_events(events, embedded))
        taken = match_events(events, isolated + embedded)
        other = sum(word is None for _, word in taken)
        print(json.dumps({"model": path, "detector": model.detector.to_dict(), "minutes": round(samples.size / FS / 60, 1),
                          "isolated": len(isolated), "isolated_found_pct": round(100 * found / len(isolated), 1),
                          "embedded": len(embedded), "embedded_fired_pct": round(100 * fired_inside / len(embedded), 1),
                          "talk_minutes": round(talk_s / 60, 1),
                          "other_alarms_per_hour_of_talk": round(other / (talk_s / 3600), 1)}))


if __name__ == "__main__":
    main()
