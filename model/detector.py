"""From per-frame posteriors to detection events: smoothing, threshold, suppression.

Follows TensorFlow's RecognizeCommands: average the posteriors over a short window, take the top
label, fire when it is a command whose averaged score passes the threshold and no detection fired
within the suppression time. A recurrent model's posterior can stay high for a second after a word,
so a label that fired is also disarmed until its score falls below `rearm_ratio` x threshold: one
event per spoken word, however long the posterior lingers.

Optional isolation gate (`isolation_gate` > 0): a command does not fire when the mean `_unknown_`
posterior from 1000 to 400 ms before it exceeds the gate, i.e. when it comes out of running speech.
Commands are said as isolated words; most false alarms in conversation come mid-sentence
(benchmarks/isolation_gate.py, docs/PERFORMANCE.md). Off in `DetectorConfig()`; a model's config.json
sets its own.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio.config import DictConfig
from model.labels import UNKNOWN, command_labels

GATE_WINDOW_MS = (1000.0, 400.0)   # the isolation gate looks at this stretch before a candidate event


@dataclass(frozen=True)
class DetectorConfig(DictConfig):
    smoothing_ms: float = 150.0
    threshold: float = 0.6
    suppression_ms: float = 750.0
    rearm_ratio: float = 0.5
    isolation_gate: float = 0.0    # 0: off; else the largest mean `_unknown_` posterior allowed before a command


@dataclass(frozen=True)
class Detection:
    time_s: float      # when the event fired, seconds from the start of the stream
    label: str
    score: float


class Detector:
    """Feed posteriors in blocks of any size; get events. `threshold` may be changed while running
    (it applies from the next block).

    The moving average is computed for a whole block at once (cumulative sums over the block and the
    tail of the previous one); only frames where a command passes the threshold go through the
    sequential suppression / re-arm logic, so a block of silence costs a few array operations.
    """

    def __init__(self, cfg: DetectorConfig, labels: tuple[str, ...], command_labels: tuple[str, ...],
                 hop_ms: float, window_ms: float, unknown_words: tuple[str, ...] = ()):
        """`unknown_words`: a personal model's new words, which share `_unknown_`'s probability
        (network.split_unknown): before a built-in command the isolation gate reads their sum with it,
        the base model's `_unknown_`, so the built-in commands are gated exactly as they were; before a
        new word it reads `_unknown_` alone (the word's own onset would otherwise count as speech)."""
        self.cfg = cfg
        self.window_ms = window_ms
        self.threshold = cfg.threshold
        self.labels = labels
        self.hop_ms = hop_ms
        self.is_command = np.array([label in command_labels for label in labels])
        self.unknown = labels.index(UNKNOWN) if UNKNOWN in labels else None
        self.unknown_words = [labels.index(w) for w in unknown_words]
        self.is_unknown_word = np.isin(np.arange(len(labels)), self.unknown_words)
        self.gate_frames = tuple(int(round(ms / hop_ms)) for ms in GATE_WINDOW_MS)   # (from, to) frames back
        self.smoothing_frames = max(1, int(round(cfg.smoothing_ms / hop_ms)))
        self.suppression_frames = int(round(cfg.suppression_ms / hop_ms))
        self.reset()

    @classmethod
    def for_model(cls, model, cfg: DetectorConfig) -> "Detector":
        """The detector for a loaded model (its labels, frame timing and, for a personal model, the new
        words that share `_unknown_`: the last `network.unknown_words` labels)."""
        n_words = model.network.cfg.unknown_words
        return cls(cfg, model.labels, command_labels(model.labels), model.frontend.hop_ms, model.frontend.window_ms,
                   tuple(model.labels[-n_words:]) if n_words else ())

    def reset(self) -> None:
        self._tail = np.zeros((0, len(self.labels)))   # the last smoothing_frames - 1 posteriors
        self._unknown_tail = np.zeros((0, 2))           # the last gate_frames[0] `_unknown_` posteriors,
                                                        # alone and with the new words
        self._frame = 0                                 # frames processed so far
        self._last_fire_frame: int | None = None        # 1-based number of the frame that fired last
        self._disarmed_label: int | None = None

    def process(self, posteriors: np.ndarray) -> tuple[np.ndarray, list[Detection]]:
        """posteriors [n_frames, C] -> (smoothed [n_frames, C], events fired in these frames)."""
        n = posteriors.shape[0]
        history = np.concatenate([self._tail, np.asarray(posteriors, np.float64)])
        m = self._tail.shape[0]
        sums = np.concatenate([np.zeros((1, history.shape[1])), np.cumsum(history, axis=0)])
        ends = np.arange(m + 1, m + n + 1)                                # exclusive end in `history`
        starts = np.maximum(0, ends - self.smoothing_frames)
        smoothed = (sums[ends] - sums[starts]) / (ends - starts)[:, None]  # a window grows at the start
        self._tail = history[max(0, history.shape[0] - (self.smoothing_frames - 1)):]

        gated = self.cfg.isolation_gate > 0 and self.unknown is not None
        if gated:
            block = history[m:, [self.unknown]]
            block = np.concatenate([block, block + history[m:, self.unknown_words].sum(1, keepdims=True)], 1)
            unknown = np.concatenate([self._unknown_tail, block])
            u = unknown.shape[0] - n       # index in `unknown` of this block's first frame
            self._unknown_tail = unknown[max(0, unknown.shape[0] - self.gate_frames[0]):]

        threshold, rearm_level = self.threshold, self.threshold * self.cfg.rearm_ratio
        top = np.argmax(smoothed, axis=1)
        score = smoothed[np.arange(n), top]
        events: list[Detection] = []
        disarmed_from = 0   # rows of this block where the disarmed label may have re-armed
        for i in np.flatnonzero(self.is_command[top] & (score >= threshold)):
            if gated:
                column = 0 if self.is_unknown_word[top[i]] else 1
                before = unknown[max(0, u + i - self.gate_frames[0]):max(0, u + i - self.gate_frames[1]), column]
                if before.size and before.mean() > self.cfg.isolation_gate:
                    continue
            label = int(top[i])
            if label == self._disarmed_label:
                if (smoothed[disarmed_from:i + 1, label] >= rearm_level).all():
                    continue
                self._disarmed_label = None
            frame = self._frame + i + 1
            if self._last_fire_frame is not None and frame - self._last_fire_frame < self.suppression_frames:
                continue
            self._last_fire_frame = frame
            self._disarmed_label, disarmed_from = label, i + 1
            # The frame that fired ends at (index * hop + window): that is when its audio was complete.
            fired_s = ((frame - 1) * self.hop_ms + self.window_ms) / 1000.0
            events.append(Detection(round(fired_s, 3), self.labels[label], float(score[i])))
        if self._disarmed_label is not None and (smoothed[disarmed_from:, self._disarmed_label] < rearm_level).any():
            self._disarmed_label = None
        self._frame += n
        return smoothed.astype(np.float32), events
