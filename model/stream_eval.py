"""Long test recordings and streaming accuracy, in the manner of TensorFlow's speech_commands tools
(`generate_streaming_test_wav.py`, `test_streaming_accuracy`).

A stream has one clip every `slot_ms` at a random offset inside its slot, a share of them unknown
words, over background noise whose volume changes every `noise_segment_ms`. Scoring: a detection
belongs to a command word when it fires between the word's start and its end + `tolerance_ms`.
"""
from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from audio.config import FrontendConfig
from model import data
from model.detector import Detection
from model.labels import COMMANDS, UNKNOWN


@dataclass(frozen=True)
class StreamConfig:
    seconds: float = 600.0
    slot_ms: float = 3000.0
    unknown_share: float = 0.3
    noise_volume_max: float = 0.1
    noise_segment_ms: float = 1500.0
    seed: int = 0


@dataclass(frozen=True)
class WordSpan:
    label: str
    start_ms: float
    end_ms: float


def make_stream(data_dir: str | Path, split: str, cfg: StreamConfig, frontend: FrontendConfig):
    """Returns (samples [n] float32, spans) built from one split's speakers and noise region."""
    rng = np.random.default_rng(cfg.seed)
    fs = frontend.sample_rate_hz
    items = data.list_splits(data_dir)[split]
    commands = [item for item in items if item[1] in COMMANDS]
    unknowns = [item for item in items if item[1] == UNKNOWN]
    if not commands:
        raise data.DatasetError(f"the {split} split of {data_dir} has no command clips")
    n_total = int(cfg.seconds * fs)
    out = np.zeros(n_total, np.float32)

    # Background: noise from this split's held-out region, a new random volume every segment.
    noises = data.load_noise(data_dir, frontend)
    segment = int(cfg.noise_segment_ms * fs / 1000)
    for start in range(0, n_total, segment):
        region = data.noise_region(noises[rng.integers(len(noises))], split)
        offset = rng.integers(0, max(1, region.size - segment))
        piece = data.fit_length(region[offset:offset + segment], segment)[: n_total - start]
        out[start:start + piece.size] = piece / (np.abs(region).max() + 1e-9) * rng.uniform(0, cfg.noise_volume_max)

    spans: list[WordSpan] = []
    slot = int(cfg.slot_ms * fs / 1000)
    clip = frontend.clip_samples
    for slot_start in range(0, n_total - slot + 1, slot):
        pool = unknowns if unknowns and rng.random() < cfg.unknown_share else commands
        path, label = pool[rng.integers(len(pool))]
        samples = data.fit_length(data.read_audio(Path(data_dir) / path, fs), clip)
        start = slot_start + int(rng.integers(0, slot - clip + 1))
        out[start:start + clip] += samples
        spans.append(WordSpan(label, round(start * 1000 / fs, 1), round((start + clip) * 1000 / fs, 1)))
    return np.clip(out, -1.0, 1.0), spans


def write_labels(path: str | Path, spans: list[WordSpan]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "start_ms", "end_ms"])
        for span in spans:
            writer.writerow([span.label, span.start_ms, span.end_ms])


def read_labels(path: str | Path) -> list[WordSpan]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    try:
        return [WordSpan(r["label"], float(r["start_ms"]), float(r["end_ms"])) for r in rows]
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: expected columns label,start_ms,end_ms ({exc})") from None


@dataclass(frozen=True)
class StreamScore:
    words: int            # command words in the stream
    matched: int          # words with a detection in their window
    correct: int          # ... whose label was right
    wrong: int            # ... whose label was wrong
    false_positives: int  # detections outside every command window, or repeats inside one
    hours: float

    def as_dict(self) -> dict:
        n = max(1, self.words)
        return {**asdict(self), "matched_pct": 100 * self.matched / n, "correct_pct": 100 * self.correct / n,
                "wrong_pct": 100 * self.wrong / n, "false_positive_pct": 100 * self.false_positives / n,
                "false_alarms_per_hour": self.false_positives / self.hours if self.hours else 0.0}


def match_events(events: list[Detection], spans: list[WordSpan],
                 tolerance_ms: float = 750.0) -> list[tuple[Detection, WordSpan | None]]:
    """Each event, in time order, with the command word it belongs to (None: a false positive). An
    event belongs to the first word not yet taken whose start .. end + `tolerance_ms` holds it."""
    words = [s for s in spans if s.label in COMMANDS]
    taken = [False] * len(words)
    matches: list[tuple[Detection, WordSpan | None]] = []
    for event in sorted(events, key=lambda e: e.time_s):
        t_ms = event.time_s * 1000
        hit = next((i for i, w in enumerate(words)
                    if not taken[i] and w.start_ms <= t_ms <= w.end_ms + tolerance_ms), None)
        if hit is not None:
            taken[hit] = True
        matches.append((event, None if hit is None else words[hit]))
    return matches


def score_stream(events: list[Detection], spans: list[WordSpan], duration_s: float,
                 tolerance_ms: float = 750.0) -> StreamScore:
    matches = match_events(events, spans, tolerance_ms)
    correct = sum(word is not None and event.label == word.label for event, word in matches)
    wrong = sum(word is not None and event.label != word.label for event, word in matches)
    false_positives = sum(word is None for _, word in matches)
    words = sum(s.label in COMMANDS for s in spans)
    return StreamScore(words, correct + wrong, correct, wrong, false_positives, duration_s / 3600)


def pool_scores(scores: list[StreamScore]) -> StreamScore:
    """Several streams' scores as one (counts and hours added)."""
    return StreamScore(*(sum(getattr(score, name) for score in scores)
                         for name in ("words", "matched", "correct", "wrong", "false_positives", "hours")))
