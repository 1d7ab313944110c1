"""What the window shows, held apart from the widgets that draw it.

The worker's signals land in these slots (GUI thread). They only store the latest values: the window's
display timer reads them at 20 Hz and redraws, so a burst of audio never turns into a burst of
redraws, and data that was superseded before the next tick is simply never drawn.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot


from model.detector import Detection
from model.labels import command_labels
from model.model_config import ModelSpec
from model.stream_update import StreamUpdate
from desktop_app.worker import InputLevel

SPECTROGRAM_S = 5.0      # seconds of log-mel history on screen
HIDDEN_S = 3.0           # seconds of recurrent state on screen
HISTORY_LENGTH = 200     # detections kept in the history list
EVENT_CLIPS_KEPT = 50    # ...of which the latest keep their audio (2 s of int16: 64 kB each)


class FrameRing:
    """The last `capacity` rows of a [time, width] stream, oldest first; starts filled with `fill`."""

    def __init__(self, capacity: int, width: int, fill: float = 0.0):
        self.capacity, self.width, self.fill = capacity, width, fill
        self.clear()

    def clear(self) -> None:
        self._rows = np.full((self.capacity, self.width), self.fill, np.float32)
        self._next = 0   # row that the next push overwrites (the oldest row)

    def push(self, rows: np.ndarray) -> None:
        """rows [n, width]; when n > capacity only the last `capacity` rows are kept."""
        rows = np.asarray(rows, np.float32)[-self.capacity:]
        n = rows.shape[0]
        end = self._next + n
        if end <= self.capacity:
            self._rows[self._next:end] = rows
        else:
            split = self.capacity - self._next
            self._rows[self._next:] = rows[:split]
            self._rows[: n - split] = rows[split:]
        self._next = end % self.capacity

    def ordered(self) -> np.ndarray:
        """[capacity, width], oldest row first (a copy)."""
        return np.roll(self._rows, -self._next, axis=0)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    labels: tuple[str, ...]
    commands: tuple[str, ...]
    description: str        # cell, layers, size
    accuracy: dict          # split name -> accuracy 0..1 (only the splits the config has)

    @classmethod
    def of(cls, spec: ModelSpec) -> "ModelInfo":
        net = spec.network
        description = f"{net.cell.upper()} {net.n_layers}x{net.hidden_size}"
        if net.extra_top_units:
            description += f" + {net.extra_top_units} personal units"
        if net.input_norm == "pcen":
            description += ", PCEN input"
        extra = spec.extra if isinstance(spec.extra, dict) else {}
        # Read from the config (written at training) rather than counted: no torch needed.
        n_params = extra.get("training", {}).get("parameters") if isinstance(extra.get("training"), dict) else None
        if isinstance(n_params, int):
            description += f", {n_params / 1000:.0f}k parameters"
        metrics = extra.get("metrics", {})
        accuracy = {}
        for split in ("validation", "test"):
            value = metrics.get(split, {}).get("accuracy") if isinstance(metrics.get(split), dict) else None
            if isinstance(value, (int, float)):
                accuracy[split] = float(value)
        name = spec.path.name if spec.path else "model"
        commands = command_labels(spec.labels)
        return cls(name, tuple(spec.labels), commands, description, accuracy)

    def text(self) -> str:
        lines = [f"Model: {self.name} ({self.description})", "Commands: " + " ".join(self.commands)]
        if self.accuracy:
            lines.append("Accuracy: " + ", ".join(f"{split} {value:.1%}" for split, value in self.accuracy.items()))
        else:
            lines.append("Accuracy: not recorded in the model config")
        return "\n".join(lines)


class LiveViewModel(QObject):
    """Latest live values. `version` grows with every change, so a redraw can skip when nothing moved."""

    history_added = Signal(object)      # Detection
    status_changed = Signal(str, bool)  # message, is_error
    running_changed = Signal(bool)

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.info = ModelInfo.of(spec)
        self.hop_ms = spec.frontend.hop_ms
        self.labels = tuple(spec.labels)
        self.command_index = np.array([self.labels.index(c) for c in self.info.commands], dtype=int)
        frames_per_s = 1000.0 / self.hop_ms
        # The feature value of digital silence: the floor the spectrogram starts at.
        self.log_mel_floor = spec.frontend.silence_feature
        self.spectrogram = FrameRing(int(round(SPECTROGRAM_S * frames_per_s)), spec.frontend.n_mels, self.log_mel_floor)
        self.hidden = FrameRing(int(round(HIDDEN_S * frames_per_s)), spec.network.top_size)
        self.history: deque[Detection] = deque(maxlen=HISTORY_LENGTH)
        self.event_clips: deque[tuple[Detection, np.ndarray]] = deque(maxlen=EVENT_CLIPS_KEPT)
        self.threshold = spec.detector.threshold
        self.running = False
        self.error: str | None = None
        self.reset()

    def reset(self) -> None:
        """Clear the live displays for a new run (history and threshold stay)."""
        self.spectrogram.clear()
        self.hidden.clear()
        self.posteriors = np.zeros(len(self.labels), np.float32)
        self.level: InputLevel | None = None
        self.dropped_blocks = 0
        self.frames_seen = 0
        self.last_detection: Detection | None = None
        self.last_detection_at = 0.0      # time.monotonic() when it arrived
        self.version = 0

    @property
    def command_posteriors(self) -> np.ndarray:
        """[n_commands] latest smoothed probabilities, in `info.commands` order."""
        return self.posteriors[self.command_index]

    @Slot(object)
    def on_frames(self, batch: StreamUpdate) -> None:
        self.spectrogram.push(batch.log_mel)
        self.hidden.push(batch.hidden)
        self.posteriors = batch.posteriors[-1]
        self.frames_seen = batch.start_frame + batch.log_mel.shape[0]
        self.version += 1

    @Slot(object)
    def on_detected(self, event: Detection) -> None:
        self.last_detection = event
        self.last_detection_at = time.monotonic()
        self.history.append(event)
        self.version += 1
        self.history_added.emit(event)

    @Slot(object, object)
    def on_event_audio(self, event: Detection, samples: np.ndarray) -> None:
        self.event_clips.append((event, samples))

    def clip_of(self, event: Detection) -> np.ndarray | None:
        """The audio a detection fired on (int16), while it is among the latest kept; else None."""
        return next((samples for e, samples in self.event_clips if e is event), None)

    @Slot(object)
    def on_level(self, level: InputLevel) -> None:
        self.level = level
        self.version += 1

    @Slot(int)
    def on_dropped(self, total_blocks: int) -> None:
        self.dropped_blocks = total_blocks
        self.version += 1

    @Slot(str)
    def on_error(self, message: str) -> None:
        self.error = message
        self.status_changed.emit(message, True)

    def set_status(self, message: str) -> None:
        self.error = None
        self.status_changed.emit(message, False)

    def set_running(self, running: bool) -> None:
        if running != self.running:
            self.running = running
            self.running_changed.emit(running)


class FileAnalysis(QObject):
    """Everything one "Open file..." run produced: all smoothed posteriors and all detections."""

    def __init__(self, path: str, hop_ms: float):
        super().__init__()
        self.path = path
        self.hop_ms = hop_ms
        self._chunks: list[np.ndarray] = []
        self.detections: list[Detection] = []
        self.error: str | None = None

    @Slot(object)
    def on_frames(self, batch: StreamUpdate) -> None:
        self._chunks.append(batch.posteriors)

    @Slot(object)
    def on_detected(self, event: Detection) -> None:
        self.detections.append(event)

    @property
    def posteriors(self) -> np.ndarray:
        """[frames, labels] smoothed posteriors of the whole file."""
        if not self._chunks:
            return np.zeros((0, 0), np.float32)
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0]

    @property
    def times_s(self) -> np.ndarray:
        """[frames] end time of each frame's hop, seconds from the start of the file."""
        return (np.arange(self.posteriors.shape[0]) + 1) * self.hop_ms / 1000.0
