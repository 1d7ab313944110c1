"""The Personalize dialog's background jobs, on plain threads the dialog polls (no widget touched off the
GUI thread): one take recorded from a freshly opened source, and an enrollment run."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from audio.capture import CaptureError
from audio.io import AudioReadError
from desktop_app.worker import LevelAccumulator
from model.takes import EnrollConfig


class TakeRecording(threading.Thread):
    """One recording from a freshly opened source: wait for audio, count down, capture `capture_s`."""

    def __init__(self, source, sample_rate_hz: int, countdown_s: float, capture_s: float):
        super().__init__(name="take-recording", daemon=True)
        self.source = source
        self.sample_rate_hz = int(sample_rate_hz)
        self.countdown_s = float(countdown_s)
        self.capture_s = float(capture_s)
        self.state = "opening"            # opening -> countdown -> recording -> done / failed
        self.error: str | None = None
        self.samples: np.ndarray | None = None
        self.audio_since: float | None = None
        self._captured = 0
        self._level = LevelAccumulator()
        self._lock = threading.Lock()
        self._cancel = threading.Event()

    @property
    def countdown_left_s(self) -> float:
        if self.audio_since is None:
            return self.countdown_s
        return max(0.0, self.countdown_s - (time.monotonic() - self.audio_since))

    @property
    def fraction_captured(self) -> float:
        return min(1.0, self._captured / max(1, self.capture_s * self.sample_rate_hz))

    def take_level(self):
        with self._lock:
            return self._level.take() if self._level.n_samples else None

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        pieces: list[np.ndarray] = []
        need = int(round(self.capture_s * self.sample_rate_hz))
        try:
            self.source.start()
            take_notices = getattr(self.source, "take_notices", list)   # a reconnecting microphone
            while not self._cancel.is_set() and self._captured < need:
                block = self.source.read(0.05)
                if any(notice.lost for notice in take_notices()):
                    # A take with a hole in it is no take: say so instead of waiting for the device.
                    raise CaptureError(f"the microphone {self.source.name} was lost during the take")
                if block is not None and block.size:
                    now = time.monotonic()
                    if self.audio_since is None:
                        self.audio_since = now
                    with self._lock:
                        self._level.add(block)
                    if now - self.audio_since < self.countdown_s:
                        self.state = "countdown"      # audio before "speak now" is not part of the take
                    else:
                        self.state = "recording"
                        pieces.append(block)
                        self._captured += block.size
                if getattr(self.source, "finished", False):
                    break
        except (CaptureError, AudioReadError) as exc:
            self.error = str(exc)
        except Exception as exc:   # the dialog must hear about anything, never wait on a dead thread
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            try:
                self.source.stop()
            except Exception:
                pass
        if self.error is None and self._cancel.is_set():
            self.error = "cancelled"
        if self.error is not None:
            self.state = "failed"
            return
        samples = np.concatenate(pieces)[:need] if pieces else np.zeros(0, np.float32)
        self.samples = np.pad(samples, (0, need - samples.size)).astype(np.float32)
        self.state = "done"


class EnrollJob(threading.Thread):
    """model/enroll.py off the GUI thread; `progress` 0..1, then `result` or `error`."""

    def __init__(self, takes_dir: Path, out_dir: Path, base_dir: Path, cfg: EnrollConfig):
        super().__init__(name="enroll", daemon=True)
        self.takes_dir, self.out_dir, self.base_dir, self.cfg = takes_dir, out_dir, base_dir, cfg
        self.progress = 0.0
        self.result = None
        self.error: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            from model.enroll import EnrollError, enroll   # torch: imported only when adapting
            from model.model_config import ModelLoadError
            try:
                self.result = enroll(self.takes_dir, self.out_dir, self.base_dir, self.cfg,
                                     progress=lambda f: setattr(self, "progress", float(f)))
            except (EnrollError, ModelLoadError, AudioReadError, OSError) as exc:
                self.error = str(exc)
        except Exception as exc:   # never die silently: the dialog must say what happened
            self.error = f"adaptation failed: {type(exc).__name__}: {exc}"
        finally:
            self.done.set()
