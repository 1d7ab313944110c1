"""Listening modes on the recognizer's real events: push-to-talk lets through only the commands reported
while the key is held (with their actions), paused closes the input; the global key on a real X server
(Xvfb, keys pressed with xdotool while another program has the focus)."""
from __future__ import annotations

import os
import subprocess
import time

import pytest
import soundfile as sf

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, QTimer   # noqa: E402

from audio.file_source import FileSource            # noqa: E402
from conftest import focused_text_field, make_stream   # noqa: E402
from desktop_app.hotkey import GlobalKey, HotkeyError   # noqa: E402
from desktop_app.listen_mode import ListenMode, TalkGate   # noqa: E402
from desktop_app.live_session import LiveSession   # noqa: E402

# "yes" said at 0.3 s, "stop" at 2.8 s: the key goes down at 2.2 s and up at 4.4 s (after "stop" has
# been reported), so only "stop" is inside the key's window.
PRESS_S, RELEASE_S = 2.2, 4.4


@pytest.fixture(scope="module")
def two_words_wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("ptt") / "yes_then_stop.wav"
    sf.write(path, make_stream([("yes", 0.3), ("stop", 2.8)], total_s=5.0), 16000, subtype="PCM_16")
    return path


def test_gate_opens_from_press_to_shortly_after_release():
    gate = TalkGate(open_after_release_s=0.5)
    assert gate.allows(1.0)                     # not enabled: always on
    gate.enabled = True
    assert not gate.allows(1.0)
    gate.press(10.0)
    assert not gate.allows(9.9) and gate.allows(10.0) and gate.allows(12.0)
    gate.release(12.0)
    assert gate.allows(12.4) and not gate.allows(12.6)
    gate.open_after_release_s = 5.0             # tap mode: a tap keeps it open for seconds
    gate.press(20.0)
    gate.release(20.1)
    assert gate.allows(24.9) and not gate.allows(25.2)
    gate.press(30.0)
    gate.reset()                                # a mode change forgets a key that was down
    assert not gate.key_down and not gate.allows(30.5)


def _session(tmp_path, model, wav, marks):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    actions = tmp_path / "actions.toml"
    actions.write_text("".join(f'[actions.{word}]\nrun = ["sh", "-c", "echo {word} >> {marks}"]\n'
                               for word in ("yes", "stop")))
    session = LiveSession(model, settings=settings, actions_path=actions,
                          source_factory=lambda device, rate: FileSource(wav, rate))
    session.load_actions(required=True)
    return session


def _play(qtbot, session, mode, press=None, release=None):
    fired = []
    session.command_fired.connect(lambda event: fired.append(event.label))
    started = time.monotonic()
    with qtbot.waitSignal(session.run_finished, timeout=15000):
        session.set_mode(mode)
        if press is not None:
            QTimer.singleShot(int(PRESS_S * 1000), press)
            QTimer.singleShot(int(RELEASE_S * 1000), release)
    return fired, time.monotonic() - started


def _marks(path, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not path.exists():
        time.sleep(0.05)
    time.sleep(0.3)   # an action still running
    return path.read_text().split() if path.exists() else []


def test_always_on_fires_both_commands(qtbot, tmp_path, model, two_words_wav):
    marks = tmp_path / "marks.txt"
    session = _session(tmp_path, model, two_words_wav, marks)
    fired, _ = _play(qtbot, session, ListenMode.ALWAYS)
    session.shutdown()
    assert fired == ["yes", "stop"]
    assert _marks(marks) == ["yes", "stop"]


def test_push_to_talk_fires_only_inside_the_key_window(qtbot, tmp_path, model, two_words_wav):
    marks = tmp_path / "marks.txt"
    session = _session(tmp_path, model, two_words_wav, marks)
    states = []
    session.state_changed.connect(lambda: states.append(session.state_text()))
    fired, _ = _play(qtbot, session, ListenMode.PUSH_TO_TALK, session.talk_pressed, session.talk_released)
    session.shutdown()
    assert fired == ["stop"]                    # "yes" was said with the key up: no event, no action
    assert _marks(marks) == ["stop"]
    assert "push-to-talk: talking" in states and states[0].startswith("push-to-talk: hold")
    assert session.view_model.history[-1].label == "stop" and len(session.view_model.history) == 1


def test_paused_closes_the_input_and_is_remembered(qtbot, tmp_path, model, two_words_wav):
    session = _session(tmp_path, model, two_words_wav, tmp_path / "marks.txt")
    session.set_mode(ListenMode.ALWAYS)
    assert session.is_listening and session.mode is ListenMode.ALWAYS
    session.set_mode(ListenMode.PAUSED)
    assert not session.is_running and session.worker is None and session.mode is ListenMode.PAUSED
    session.shutdown()
    again = LiveSession(session.model, settings=session.settings)
    assert again.paused_at_start and again.talk_mode is ListenMode.ALWAYS


def test_push_to_talk_key_is_remembered(tmp_path, model):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    session = LiveSession(model, settings=settings, source_factory=lambda device, rate: None)
    session.set_talk_key("Pause")
    session.set_talk_tap(True)
    session.talk_mode = ListenMode.PUSH_TO_TALK
    session.save_settings()
    again = LiveSession(model, settings=settings)
    assert again.talk_key == "Pause" and again.talk_tap


def test_without_x11_the_key_fails_in_one_line_and_the_button_still_talks(qtbot, tmp_path, model, two_words_wav,
                                                                          monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(HotkeyError, match="no X11 display"):
        GlobalKey("F9", lambda: None, lambda: None).start()
    monkeypatch.setenv("DISPLAY", ":0")                        # XWayland beside a Wayland session
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    with pytest.raises(HotkeyError, match="Wayland session"):
        GlobalKey("F9", lambda: None, lambda: None).start()
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY")
    session = _session(tmp_path, model, two_words_wav, tmp_path / "marks.txt")
    fired, _ = _play(qtbot, session, ListenMode.PUSH_TO_TALK, session.talk_pressed, session.talk_released)
    session.shutdown()
    assert "\n" not in session.key_error and "Talk button" in session.key_error
    assert fired == ["stop"]


def test_global_key_on_a_real_x_server(x_display, tmp_path, monkeypatch):
    monkeypatch.setenv("DISPLAY", x_display["DISPLAY"])
    for name in ("WAYLAND_DISPLAY", "XDG_SESSION_TYPE"):   # this process is an X11 client of Xvfb
        monkeypatch.delenv(name, raising=False)
    window, typed = focused_text_field(x_display, tmp_path)
    events = []
    key = GlobalKey("F9", lambda: events.append("down"), lambda: events.append("up"))
    try:
        key.start()
        with pytest.raises(HotkeyError, match="another program already uses the key 'F9'"):
            GlobalKey("F9", lambda: None, lambda: None).start()
        with pytest.raises(HotkeyError, match="unknown key 'NoSuchKey'"):
            GlobalKey("NoSuchKey", lambda: None, lambda: None).start()
        subprocess.run(["xdotool", "keydown", "F9"], env=x_display, check=True)
        time.sleep(0.4)
        assert events == ["down"]
        subprocess.run(["xdotool", "keyup", "F9"], env=x_display, check=True)
        subprocess.run(["xdotool", "type", "a"], env=x_display, check=True)   # other keys still go to the field
        time.sleep(0.4)
        assert events == ["down", "up"]
        assert typed.exists() and typed.read_text() == "a"
    finally:
        key.stop()
        window.kill()
    # Let go: another program may take the key now.
    again = GlobalKey("F9", lambda: None, lambda: None)
    again.start()
    again.stop()


def test_push_to_talk_with_the_global_key(qtbot, x_display, tmp_path, model, two_words_wav, monkeypatch):
    """The whole path: a key held on the X server (xdotool), the recognizer's events, the actions."""
    monkeypatch.setenv("DISPLAY", x_display["DISPLAY"])
    for name in ("WAYLAND_DISPLAY", "XDG_SESSION_TYPE"):   # this process is an X11 client of Xvfb
        monkeypatch.delenv(name, raising=False)
    marks = tmp_path / "marks.txt"
    session = _session(tmp_path, model, two_words_wav, marks)

    def key(direction):
        return lambda: subprocess.run(["xdotool", direction, "F9"], env=x_display, check=True)

    fired, _ = _play(qtbot, session, ListenMode.PUSH_TO_TALK, key("keydown"), key("keyup"))
    assert session.key_error is None
    session.shutdown()
    assert fired == ["stop"]
    assert _marks(marks) == ["stop"]


def test_gui_refuses_an_unknown_push_to_talk_key_in_one_line():
    from conftest import run_cli
    done = run_cli("gui", "--talk-key", "NoSuchKey")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "speechcmd: --talk-key: unknown key 'NoSuchKey' (X11 key names: F9, Pause, Scroll_Lock, " \
                          "Control_R...)\n"
