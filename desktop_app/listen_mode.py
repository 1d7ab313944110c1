"""Listening modes: always on, push-to-talk, paused.

Push-to-talk does not stop the recognizer: it keeps hearing (its hidden state stays warm) and only the
commands it reports are held back while the key is up. A command fires when the moment it is reported
falls inside the key's window: from the key going down to `open_after_release_s` after it comes up.
"Hold" mode keeps the window open for RELEASE_GRACE_S after release, because the recognizer reports a
word a little after its end (median 134 ms, p90 209 ms in docs/LIVE.md): a command said with the key
held and released at once still fires. "Tap" mode keeps it open for a few seconds after a tap.
"""
from __future__ import annotations

import threading
import time
from enum import Enum


class ListenMode(str, Enum):
    ALWAYS = "always"
    PUSH_TO_TALK = "push-to-talk"
    PAUSED = "paused"          # the microphone is closed

    @classmethod
    def parse(cls, value, default: "ListenMode") -> "ListenMode":
        """A remembered setting; anything unknown (a damaged settings file) gives `default`."""
        try:
            return cls(str(value))
        except ValueError:
            return default


RELEASE_GRACE_S = 0.5
TAP_OPEN_S = 5.0
DEFAULT_TALK_KEY = "F9"


class TalkGate:
    """Whether a command reported now may fire. Thread-safe: the key thread (or the window's button)
    presses and releases, the recognizer thread asks `allows`."""

    def __init__(self, open_after_release_s: float = RELEASE_GRACE_S):
        self._lock = threading.Lock()
        self.enabled = False                     # False: always on, every command fires
        self.open_after_release_s = open_after_release_s
        self._down_since: float | None = None    # monotonic time of the press while the key is down
        self._closes_at = float("-inf")          # when the window of the last release ends

    def press(self, now_s: float | None = None) -> None:
        with self._lock:
            if self._down_since is None:
                self._down_since = time.monotonic() if now_s is None else now_s

    def release(self, now_s: float | None = None) -> None:
        with self._lock:
            if self._down_since is None:
                return
            now_s = time.monotonic() if now_s is None else now_s
            self._down_since = None
            self._closes_at = now_s + self.open_after_release_s

    @property
    def key_down(self) -> bool:
        return self._down_since is not None

    def is_open(self, now_s: float | None = None) -> bool:
        now_s = time.monotonic() if now_s is None else now_s
        with self._lock:
            return (self._down_since is not None and now_s >= self._down_since) or now_s <= self._closes_at

    def allows(self, now_s: float | None = None) -> bool:
        return not self.enabled or self.is_open(now_s)

    def reset(self) -> None:
        """A key that was down when the mode changed must not keep the gate open."""
        with self._lock:
            self._down_since = None
            self._closes_at = float("-inf")
