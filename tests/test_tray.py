"""The tray icon: its menu drives the session offscreen; the window closes to the tray and stops drawing;
`gui --tray` on a real X server with a real tray (Xvfb + trayer) listens to the virtual microphone
without ever showing the window, and says so once where the desktop has no tray."""
from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest
import soundfile as sf

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings          # noqa: E402

from audio.capture import SourceNotice

from audio.file_source import FileSource   # noqa: E402
from conftest import REPO_ROOT, make_stream           # noqa: E402
from desktop_app.listen_mode import ListenMode        # noqa: E402
from desktop_app.live_session import LiveSession      # noqa: E402
from desktop_app.tray import Tray                     # noqa: E402


class LosingSource:
    """A file played in real time whose input is reported lost after a moment (as a reconnecting microphone)."""

    def __init__(self, path):
        self.file = FileSource(path, 16000)
        self.finished, self.dropped_blocks, self.overflows = False, 0, 0
        self.notices = [SourceNotice(True, "input device 'test' stopped delivering audio; reconnecting...")]
        self.reads = 0

    def start(self):
        self.file.start()

    def read(self, timeout_s):
        self.reads += 1
        block = self.file.read(timeout_s)
        self.finished = self.file.finished
        return block

    def take_notices(self):
        if self.reads > 5 and self.notices:
            return [self.notices.pop()]
        return []

    def stop(self):
        self.file.stop()


@pytest.fixture
def long_wav(tmp_path):
    path = tmp_path / "stop.wav"
    sf.write(path, make_stream([("stop", 0.5)], total_s=20.0), 16000, subtype="PCM_16")
    return path


@pytest.fixture
def session(tmp_path, shipped_model, long_wav):
    model = shipped_model   # the menu names the shipped model as such
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    session = LiveSession(model, settings=settings, source_factory=lambda device, rate: LosingSource(long_wav))
    yield session
    session.shutdown()


def test_tray_menu_drives_the_listening_mode_and_shows_the_state(qtbot, session, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)   # no global key here: the window's button is the way
    opened, quit_ = [], []
    tray = Tray(session, lambda: opened.append(1), lambda: quit_.append(1), list_models=lambda: [])
    assert tray.state == "paused" and tray.mode_actions[ListenMode.PAUSED].isChecked()

    tray.mode_actions[ListenMode.ALWAYS].trigger()
    assert session.is_listening and tray.state == "listening"
    assert tray.icon.toolTip() == "speechcmd: listening"
    qtbot.waitUntil(lambda: tray.state == "lost", timeout=5000)     # the input went away: red
    assert "reconnecting" in tray.icon.toolTip()

    tray.mode_actions[ListenMode.PUSH_TO_TALK].trigger()            # the same run goes on, gated
    assert session.is_listening and session.gate.enabled
    session.input_lost = False
    session.state_changed.emit()
    assert tray.state == "waiting" and tray.icon.toolTip() == "speechcmd: push-to-talk: hold F9"
    session.talk_pressed()
    assert tray.state == "talking"
    session.talk_released()

    tray.mode_actions[ListenMode.PAUSED].trigger()
    assert not session.is_running and tray.state == "paused"
    assert session.settings.value("listen_mode") == "paused"

    tray.actions_action.trigger()
    assert session.action_runner.enabled is False
    tray.notify_action.trigger()
    assert session.notify is True
    tray.tap_action.trigger()
    assert session.talk_tap
    tray.model_menu.aboutToShow.emit()
    shown = [(a.text(), a.isChecked()) for a in tray.model_menu.actions()]
    assert shown == [("Shipped model", True)]
    tray.open_action.trigger()
    tray.quit_action.trigger()
    assert opened == [1] and quit_ == [1]
    # The icons differ by state (the dot's colour), so a glance tells them apart.
    images = {state: icon.pixmap(32, 32).toImage() for state, icon in tray.icons.items()}
    assert len({img.pixel(27, 27) for img in images.values()}) == len(images)


def test_closing_the_window_keeps_listening_and_stops_drawing(qtbot, session):
    from desktop_app.window import MainWindow
    window = MainWindow(session=session, device_lister=lambda rescan: [])
    qtbot.addWidget(window)
    window.keep_in_tray = True
    window.show()
    session.set_mode(ListenMode.ALWAYS)
    qtbot.waitUntil(lambda: session.view_model.frames_seen > 0, timeout=5000)
    with qtbot.waitSignal(window.hidden_to_tray, timeout=2000):
        window.close()
    assert not window.isVisible() and session.is_listening
    assert not window.redraw_timer.isActive() and session.worker.emit_frames is False
    seen = session.view_model.frames_seen
    qtbot.wait(500)
    assert session.view_model.frames_seen == seen          # no frames cross threads while hidden
    window.show()
    assert window.redraw_timer.isActive() and session.worker.emit_frames is True
    qtbot.waitUntil(lambda: session.view_model.frames_seen > seen, timeout=3000)


def _interrupt(app) -> str:
    """Ctrl+C, as in a terminal: the app must end by itself with status 0; its stderr."""
    try:
        app.send_signal(signal.SIGINT)
        _, err = app.communicate(timeout=15)
    finally:
        app.kill()
    assert app.returncode == 0, err
    assert "Traceback" not in err
    return err


def _wait_for(stream, text, timeout_s):
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.2)
        if ready:
            line = stream.readline()
            seen.append(line)
            if text in line:
                return line, seen
    return None, seen


@pytest.fixture
def tray_host(x_display):
    """A system tray (trayer) on the Xvfb server: Qt then finds a tray, as on a desktop."""
    if shutil.which("trayer") is None:
        pytest.skip("trayer is not installed (apt install trayer): no tray host for Xvfb")
    trayer = subprocess.Popen(["trayer"], env=x_display, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    yield x_display
    trayer.kill()


def test_gui_tray_listens_without_a_window_on_a_real_tray(tray_host, virtual_mic, tmp_path, clips_dir):
    env = dict(virtual_mic.env, DISPLAY=tray_host["DISPLAY"], QT_QPA_PLATFORM="xcb", SPEECHCMD_TIMING="1",
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"))
    marks = tmp_path / "marks.txt"
    actions = tmp_path / "actions.toml"
    actions.write_text(f'[actions.stop]\nrun = ["sh", "-c", "echo stop >> {marks}"]\n')
    app = subprocess.Popen([sys.executable, "-m", "desktop_app.cli", "gui", "--tray", "--actions", str(actions)],
                           cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line, seen = _wait_for(app.stderr, "recognizer ready", 30)
        assert line is not None, seen
        windows = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "speechcmd: live"], env=env,
                                 capture_output=True, text=True)
        assert windows.stdout.strip() == ""                    # in the tray: no window
        player = virtual_mic.play(clips_dir / "stop.wav")
        assert player.wait(10) == 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not marks.exists():
            time.sleep(0.1)
        assert marks.exists() and marks.read_text().split() == ["stop"]
    finally:
        err = _interrupt(app)
    assert "no system tray" not in err
    config = (tmp_path / "config" / "speechcmd" / "speechcmd.conf").read_text()
    assert "listen_mode=always" in config


def test_gui_tray_without_a_tray_says_so_once_and_keeps_the_window(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"),
               PULSE_SERVER="unix:/nonexistent")
    app = subprocess.Popen([sys.executable, "-m", "desktop_app.cli", "gui", "--tray"], cwd=REPO_ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line, seen = _wait_for(app.stderr, "no system tray", 30)
        assert line == "speechcmd: this desktop has no system tray: the window stays open (closing it quits)\n", seen
        time.sleep(1.0)
    finally:
        err = _interrupt(app)
    assert "no system tray" not in err


def test_quit_with_the_window_open_beside_a_real_tray(tray_host, tmp_path):
    """The window hides to the tray when closed; quitting (Ctrl+C, the tray's Quit) must still end the app
    (Qt 6 asks every window to close before it quits, and a window that hides would refuse)."""
    env = dict(tray_host, XDG_CONFIG_HOME=str(tmp_path / "config"), PULSE_SERVER="unix:/nonexistent")
    app = subprocess.Popen([sys.executable, "-m", "desktop_app.cli", "gui"], cwd=REPO_ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "speechcmd: live"], env=env,
                                   capture_output=True, text=True)
            if found.stdout.strip():
                break
            time.sleep(0.3)
        assert found.stdout.strip(), "the window did not show"
        time.sleep(1.0)
    finally:
        _interrupt(app)
