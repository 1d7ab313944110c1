"""Actions in the window (offscreen): detections of a live run fire the bound programs, the switch turns
them off, and the Actions dialog edits, tries and saves the file through the strict parser."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings   # noqa: E402

from desktop_app.actions import load_actions  # noqa: E402
from desktop_app.window import MainWindow     # noqa: E402
from test_actions import RECORDER_ARG, _records, _recorder_action  # noqa: E402


@pytest.fixture
def window_with(qtbot, model, tmp_path):
    def make(actions_path, **kwargs):
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(model, settings=settings, device_lister=lambda rescan: [], actions_path=actions_path,
                            **kwargs)
        qtbot.addWidget(window)
        window.show()
        return window
    return make


def _wait_for(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_a_live_run_fires_the_bound_actions_and_the_switch_turns_them_off(qtbot, window_with, stream_wav, tmp_path):
    out = tmp_path / "fired.jsonl"
    path = tmp_path / "actions.toml"
    path.write_text(_recorder_action("yes", out, "{label}") + _recorder_action("stop", out, "{label}"))
    window = window_with(path)
    assert window.actions_button.text() == "Actions (2)..."
    reports = []
    window.session.action_reported.connect(reports.append)
    with qtbot.waitSignal(window.session.run_finished, timeout=10000):
        window.session.start_file_playback(stream_wav)
    qtbot.waitUntil(lambda: len(reports) == 2, timeout=5000)   # each result reaches the GUI thread
    assert all(r.ok for r in reports) and all(r.spawn_ms < 1000 for r in reports), reports
    assert [r["argv"] for r in _records(out)] == [["yes"], ["stop"]]   # the stream's two commands, in order

    out.unlink()
    window.actions_switch.setChecked(False)
    with qtbot.waitSignal(window.session.run_finished, timeout=10000):
        window.session.start_file_playback(stream_wav)
    assert window.history_list.count() == 4   # heard again (the list keeps the first run too) ...
    time.sleep(0.5)
    assert not out.exists()                   # ... but nothing ran
    window.save_settings()
    assert window.settings.value("actions_enabled") == "false"


def test_the_dialog_tries_and_saves_rows_and_refuses_bad_ones(qtbot, window_with, tmp_path):
    path = tmp_path / "config" / "actions.toml"        # does not exist yet: no actions, no error
    window = window_with(None)
    window.session.actions_path = path
    assert not window.error_label.isVisible()
    dialog = window.open_actions_dialog()
    out = tmp_path / "tried.jsonl"
    line = f"{sys.executable} -c \"{RECORDER_ARG}\" {out} 'heard {{label}}; rm -rf /'"
    dialog.set_row("go", "run a program", line, min_score=0.7, cooldown_ms=500)
    with qtbot.waitSignal(window.session.action_reported, timeout=10000) as reported:
        assert dialog.try_row("go")
    assert reported.args[0].ok, reported.args[0].message
    assert [r["argv"] for r in _records(out)] == [["heard go; rm -rf /"]]   # one argument, no shell
    assert not path.exists()                                                # tried, not saved

    assert dialog.save()
    saved = load_actions(path, window.spec.labels)
    assert list(saved.actions) == ["go"]
    assert saved.actions["go"].run[-1] == "heard {label}; rm -rf /"
    assert (saved.actions["go"].min_score, saved.actions["go"].cooldown_ms) == (0.7, 500.0)
    assert window.session.action_runner.action_set.actions.keys() == {"go"}
    assert window.actions_button.text() == "Actions (1)..."

    before = path.read_text()
    dialog.set_row("stop", "run a program", "notify-send {who}")
    assert not dialog.save()
    assert "unknown placeholder {who}" in dialog.status.text()
    dialog.set_row("stop", "run a program", "echo 'unclosed")
    assert not dialog.save() and "cannot split" in dialog.status.text()
    assert path.read_text() == before                                       # nothing written


def test_a_bad_actions_file_shows_in_the_window_and_runs_nothing(window_with, tmp_path):
    path = tmp_path / "actions.toml"
    path.write_text('[actions.stop]\nrun = ["true"]\nwhen = 1\n')
    window = window_with(path)
    assert window.error_label.isVisible()
    assert f"{path}:3: unknown key 'when'" in window.error_label.text()
    assert len(window.session.action_runner.action_set) == 0


def test_gui_with_a_bad_actions_file_is_a_one_line_error(tmp_path):
    from conftest import run_cli
    path = tmp_path / "actions.toml"
    path.write_text('[actions.lights]\nrun = ["true"]\n')
    done = run_cli("gui", "--actions", str(path))
    assert done.returncode == 1
    assert done.stderr.startswith(f"speechcmd: {path}:1: the model has no command 'lights'"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_played_recording_runs_the_default_actions_only_when_asked(qtbot, window_with, stream_wav, tmp_path):
    """A file played for a look (gui --input-file, a screenshot) must not run the user's programs."""
    out = tmp_path / "fired.jsonl"
    default = Path(os.environ["XDG_CONFIG_HOME"]) / "speechcmd" / "actions.toml"
    default.parent.mkdir(parents=True, exist_ok=True)
    default.write_text(_recorder_action("yes", out, "{label}") + _recorder_action("stop", out, "{label}"))
    window = window_with(None)                      # the default file: loaded ...
    assert len(window.session.action_runner.action_set) == 2
    with qtbot.waitSignal(window.session.run_finished, timeout=10000):
        window.session.start_file_playback(stream_wav)
    assert window.history_list.count() == 2
    time.sleep(0.5)
    assert not out.exists()                         # ... but not run for a played file


def test_an_actions_file_that_stops_loading_stops_its_old_bindings(window_with, tmp_path):
    out = tmp_path / "fired.jsonl"
    path = tmp_path / "actions.toml"
    path.write_text(_recorder_action("stop", out))
    window = window_with(path)
    assert len(window.session.action_runner.action_set) == 1
    path.write_text('[actions.stop]\nrun = ["true"]\nwhen = 1\n')
    window.session.load_actions(required=True)
    assert len(window.session.action_runner.action_set) == 0
    assert window.actions_button.text() == "Actions (not loaded)..."
    dialog = window.open_actions_dialog()
    assert "did not load" in dialog.status.text()   # Save would replace it: the dialog says so first
