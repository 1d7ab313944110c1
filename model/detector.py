"""From per-frame posteriors to detection events: smoothing, threshold, suppression.

Follows TensorFlow's RecognizeCommands: average the posteriors over a short window, take the top
label, fire when it is a command whose averaged score passes the threshold and no detection fired
within the suppression time. A recurrent model's posterior can stay high for a second after a word,
so a label that fired is also disarmed until its score falls below `rearm_ratio` x threshold: one
event per spoken word, however long the posterior lingers.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from audio.config import DictConfig


@dataclass(frozen=True)
class DetectorConfig(DictConfig):
    smoothing_ms: float = 150.0
    threshold: float = 0.6
    suppression_ms: float = 750.0
    rearm_ratio: float = 0.5


@dataclass(frozen=True)
class Detection:
    time_s: float      # when the event fired, seconds from the start of the stream
    label: str
    score: float


class Detector:
    """Feed posteriors frame by frame; get events. `threshold` may be changed while running."""

    def __init__(self, cfg: DetectorConfig, labels: tuple[str, ...], command_labels: tuple[str, ...],
                 hop_ms: float, window_ms: float):
        self.cfg = cfg
        self.window_ms = window_ms
        self.threshold = cfg.threshold
        self.labels = labels
        self.hop_ms = hop_ms
        self.is_command = np.array([label in command_labels for label in labels])
        self.smoothing_frames = max(1, int(round(cfg.smoothing_ms / hop_ms)))
        self.suppression_frames = int(round(cfg.suppression_ms / hop_ms))
        self.reset()

    def reset(self) -> None:
        self._window: deque[np.ndarray] = deque(maxlen=self.smoothing_frames)
        self._sum = np.zeros(len(self.labels))
        self._frame = 0
        self._last_fire_frame: int | None = None
        self._disarmed_label: int | None = None

    def process(self, posteriors: np.ndarray) -> tuple[np.ndarray, list[Detection]]:
        """posteriors [n_frames, C] -> (smoothed [n_frames, C], events fired in these frames)."""
        smoothed = np.empty_like(posteriors, dtype=np.float64)
        events: list[Detection] = []
        for i, frame in enumerate(posteriors):
            if len(self._window) == self._window.maxlen:
                self._sum -= self._window[0]
            self._window.append(frame)
            self._sum += frame
            smoothed[i] = self._sum / len(self._window)
            self._frame += 1
            if self._disarmed_label is not None and \
                    smoothed[i, self._disarmed_label] < self.threshold * self.cfg.rearm_ratio:
                self._disarmed_label = None
            top = int(np.argmax(smoothed[i]))
            score = float(smoothed[i, top])
            if not self.is_command[top] or score < self.threshold or top == self._disarmed_label:
                continue
            if self._last_fire_frame is not None and self._frame - self._last_fire_frame < self.suppression_frames:
                continue
            self._last_fire_frame = self._frame
            self._disarmed_label = top
            # The frame that fired ends at (index * hop + window): that is when its audio was complete.
            fired_s = ((self._frame - 1) * self.hop_ms + self.window_ms) / 1000.0
            events.append(Detection(round(fired_s, 3), self.labels[top], score))
        return smoothed.astype(np.float32), events
