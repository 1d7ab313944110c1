"""A recording served through the microphone's interface (`start`, `read`, `stop`, `finished`): the live
pipeline plays files at real-time pace (`gui --input-file`, demos, tests) or as fast as asked (the
window's "Open file...")."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import numpy as np

from audio.capture import DEFAULT_BLOCK_MS, CaptureError
from audio.io import AudioReadError, iter_audio_blocks


class FileSource:
    """A recording served through the microphone interface, at real-time pace by default.

    A block becomes readable when its last sample would have been captured by a microphone, so the
    recognizer, the GUI and any timing see the same rhythm as live input. `realtime=False` serves
    blocks as fast as they are asked for.
    """

    def __init__(self, path: str | Path, sample_rate_hz: int = 16000, block_ms: float = DEFAULT_BLOCK_MS,
                 realtime: bool = True):
        self.path = Path(path)
        self.sample_rate_hz = int(sample_rate_hz)
        self.block_ms = float(block_ms)
        self.realtime = realtime
        self.finished = False
        self.dropped_blocks = 0
        self.overflows = 0
        self._blocks: Iterator[np.ndarray] | None = None
        self._next: np.ndarray | None = None
        self._served_samples = 0
        self._started_at = 0.0

    @property
    def name(self) -> str:
        return self.path.name

    def start(self) -> None:
        """Open the file. Raises AudioReadError (missing, unreadable, empty)."""
        self.finished = False
        self._served_samples = 0
        self._blocks = iter_audio_blocks(self.path, self.sample_rate_hz, self.block_ms)
        # Read the first block now, so a bad file fails here and not later in a worker loop.
        self._next = next(self._blocks, None)
        if self._next is None:
            raise AudioReadError(f"{self.path}: contains no audio samples")
        self._started_at = time.monotonic()

    def read(self, timeout_s: float = 0.1) -> np.ndarray | None:
        """Samples [n] float32, or None when nothing is due within `timeout_s` or the file ended.

        In real time: every block that is due by now, as a microphone's `read` returns everything
        captured so far (waiting up to `timeout_s` for the first one). Otherwise: the next block."""
        if self._blocks is None:
            raise CaptureError("the file source is not running (call start() first)")
        if self._next is None:
            self.finished = True
            return None
        if not self.realtime:
            return self._take()
        wait_s = self._due_s() - time.monotonic()
        if wait_s > timeout_s:
            time.sleep(max(0.0, timeout_s))
            return None
        if wait_s > 0:
            time.sleep(wait_s)
        blocks = [self._take()]
        while self._next is not None and self._due_s() <= time.monotonic():
            blocks.append(self._take())
        return np.concatenate(blocks)

    def _due_s(self) -> float:
        """When the next block's last sample would have been captured."""
        return self._started_at + (self._served_samples + self._next.size) / self.sample_rate_hz

    def _take(self) -> np.ndarray:
        block = self._next
        self._served_samples += block.size
        self._next = next(self._blocks, None)  # may raise AudioReadError for a truncated file
        if self._next is None:
            self.finished = True
        return block

    def stop(self) -> None:
        if self._blocks is not None:
            close = getattr(self._blocks, "close", None)
            if close:
                close()
        self._blocks = None
        self._next = None
