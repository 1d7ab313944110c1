"""A push-to-talk key that works while other programs have the focus.

X11 only: the key is grabbed on the root window (python-xlib, XGrabKey with any modifiers), so while
push-to-talk is on the key goes to this app and not to the focused program. Wayland gives no program
the keys of another; its answer is the XDG GlobalShortcuts portal, which this app does not use yet: on
Wayland `start` fails with a one-line reason and the window's Talk button is the way to talk.
"""
from __future__ import annotations

import os
import select
import threading
from typing import Callable

# A held key repeats as release + press pairs with the same server time; a release followed within
# this long by a press of the same key is a repeat, not the user letting go.
REPEAT_WAIT_S = 0.03
POLL_S = 0.1


class HotkeyError(Exception):
    """Why the key cannot be used, in one line for the user."""


def key_problem() -> str | None:
    """Why no global key can work in this session (None: an X server is there to ask)."""
    # Under Wayland an X11 grab (through XWayland) would only see keys typed into X11 programs.
    if os.environ.get("WAYLAND_DISPLAY") or os.environ.get("XDG_SESSION_TYPE") == "wayland":
        return "a Wayland session gives no program the keys of another"
    if not os.environ.get("DISPLAY"):
        return "no X11 display (DISPLAY is not set)"
    return None


def known_key(key_name: str) -> bool:
    """Whether X11 has a key of this name (True where python-xlib is missing: `start` says so then)."""
    try:
        from Xlib import XK
    except ImportError:
        return True
    return XK.string_to_keysym(key_name) != 0


class GlobalKey:
    """Calls `on_press()` when the key goes down and `on_release()` when it comes up, from its own thread."""

    def __init__(self, key_name: str, on_press: Callable[[], None], on_release: Callable[[], None]):
        self.key_name = key_name
        self.on_press = on_press
        self.on_release = on_release
        self._display = None
        self._keycode = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Grab the key; HotkeyError when it cannot be (no X11, unknown key, another program has it)."""
        problem = key_problem()
        if problem:
            raise HotkeyError(problem)
        try:
            from Xlib import X, XK, error
            from Xlib.display import Display
        except ImportError:
            raise HotkeyError("python-xlib is not installed") from None
        try:
            display = Display()
        except Exception as exc:   # Xlib raises several types for an unreachable server
            raise HotkeyError(f"cannot reach the X server ({exc})") from None
        keysym = XK.string_to_keysym(self.key_name)
        keycode = display.keysym_to_keycode(keysym) if keysym else 0
        if not keycode:
            display.close()
            raise HotkeyError(f"unknown key '{self.key_name}' (X11 key names: F9, Pause, Scroll_Lock, Control_R...)")
        caught = error.CatchError(error.BadAccess)
        display.screen().root.grab_key(keycode, X.AnyModifier, True, X.GrabModeAsync, X.GrabModeAsync, onerror=caught)
        display.sync()
        if caught.get_error():
            display.close()
            raise HotkeyError(f"another program already uses the key '{self.key_name}'")
        self._display, self._keycode = display, keycode
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="push-to-talk key", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Let the key go (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
            self._thread = None
        display, self._display = self._display, None
        if display is not None:
            from Xlib import X
            try:
                display.screen().root.ungrab_key(self._keycode, X.AnyModifier)
                display.close()
            except Exception:
                pass   # a server already gone has nothing left to release

    def _next_event(self, timeout_s: float):
        display = self._display
        if display.pending_events():
            return display.next_event()
        ready, _, _ = select.select([display.fileno()], [], [], timeout_s)
        return display.next_event() if ready and display.pending_events() else None

    def _run(self) -> None:
        from Xlib import X
        pending = None
        try:
            while not self._stop.is_set():
                event = pending or self._next_event(POLL_S)
                pending = None
                if event is None or getattr(event, "detail", None) != self._keycode:
                    continue
                if event.type == X.KeyPress:
                    self.on_press()
                elif event.type == X.KeyRelease:
                    following = self._next_event(REPEAT_WAIT_S)
                    if (following is not None and following.type == X.KeyPress
                            and following.detail == self._keycode and following.time == event.time):
                        continue   # auto-repeat while held
                    pending = following
                    self.on_release()
        except Exception:
            # The X server went away: the key can no longer come up, so it counts as released.
            self.on_release()
