"""The "Personalize..." dialog, offscreen, through the whole path: choose words -> record takes from a
source (real recordings of one FSDD speaker, served through the capture interface) -> a bad take is
caught and redone -> adapt on a background thread -> the window switches to the personal model,
remembers it, lists it, and the shipped model is one click away."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings  # noqa: E402

from audio.file_source import FileSource  # noqa: E402
from conftest import DATA_DIR  # noqa: E402
from desktop_app.personal_models import list_personal_models  # noqa: E402
from desktop_app.personalize import PersonalizeDialog  # noqa: E402
from desktop_app.window import MainWindow  # noqa: E402
from model.takes import EnrollConfig  # noqa: E402

TAKES = DATA_DIR / "enroll_jackson"


class QueuedFiles:
    """A source factory: every recording the dialog starts plays the next file of the queue."""

    def __init__(self, paths):
        self.paths = list(paths)
        self.opened = []

    def __call__(self, device, sample_rate_hz):
        path = self.paths.pop(0)
        self.opened.append(path)
        return FileSource(path, sample_rate_hz, realtime=False)


@pytest.fixture
def window_and_dialog(qtbot, shipped_model, tmp_path):
    model = shipped_model   # the enrollment base: it needs the shipped model's replay bank
    def make(files):
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(model, settings=settings, device_lister=lambda rescan: [], source_factory=QueuedFiles(files),
                            models_dir=tmp_path / "data" / "models")
        qtbot.addWidget(window)
        window.show()
        dialog = PersonalizeDialog(window, parent=window, countdown_s=0.0, talk_s=3.0,
                                   enroll_config=EnrollConfig(steps=40, personal_steps=40))
        dialog.show()
        return window, dialog
    return make


def test_record_adapt_and_switch_to_the_personal_model(qtbot, window_and_dialog, tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(8000, np.float32), 8000)
    talk = tmp_path / "talk.wav"   # "talking normally": other words of the same speaker
    sf.write(talk, np.concatenate([sf.read(TAKES / f"two_{t}.wav", dtype="float32")[0] for t in range(6)]), 8000)
    files = ([TAKES / f"zero_{t}.wav" for t in range(2)] + [silent] + [TAKES / "zero_2.wav"]
             + [TAKES / f"one_{t}.wav" for t in range(3)] + [talk])
    window, dialog = window_and_dialog(files)

    assert not dialog.begin_recording()                     # nothing chosen yet
    assert "at least one" in dialog.choose_error.text()
    dialog.choose(new_words="zero, One!", takes=3)
    assert not dialog.begin_recording() and "cannot be a command name" in dialog.choose_error.text()
    dialog.choose(new_words="zero, one", takes=3, name="jackson")
    stale = tmp_path / "data" / "takes" / "jackson" / "lights" / "take_1.wav"   # an earlier attempt's word
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"")
    assert dialog.begin_recording() and dialog.pages.currentIndex() == 1
    assert not stale.parent.exists()                      # enrollment must not read words not chosen now
    assert not dialog.adapt_button.isEnabled()

    # Record: "keep going" runs take after take until one is unusable (the silent file, zero's 3rd take).
    assert dialog.record_next()
    qtbot.waitUntil(lambda: dialog._recording is None and dialog.takes["zero"][2] is not None, timeout=20000)
    assert [t is not None and t["problem"] is None for t in dialog.takes["zero"]] == [True, True, False]
    assert dialog.takes["zero"][2]["problem"].startswith("silent")
    assert "redo it" in dialog.take_list.item(2).text()
    assert not (tmp_path / "data" / "takes" / "jackson" / "zero" / "take_3.wav").exists()   # never enrolled
    assert dialog.record_next()                             # redoes that take, then goes on with "one"
    qtbot.waitUntil(lambda: dialog._recording is None and dialog.good_takes("one") == 3, timeout=20000)
    assert dialog.good_takes("zero") == 3 and dialog.adapt_button.isEnabled()
    assert dialog.spectrogram_image.image is not None        # the selected take is drawn
    assert dialog.record_talk()
    qtbot.waitUntil(lambda: dialog._recording is None and dialog.talk is not None, timeout=20000)
    assert dialog.talk["seconds"] == pytest.approx(3.0)
    takes_dir = tmp_path / "data" / "takes" / "jackson"
    assert sorted(p.relative_to(takes_dir).as_posix() for p in takes_dir.rglob("*.wav")) == [
        "_unknown_/talk.wav", "one/take_1.wav", "one/take_2.wav", "one/take_3.wav",
        "zero/take_1.wav", "zero/take_2.wav", "zero/take_3.wav"]

    # A false alarm marked "Not a command" in the window's history goes with the takes, as other speech.
    rejected = tmp_path / "data" / "not_commands" / "20261207-101010-000000_stop.wav"
    rejected.parent.mkdir(parents=True)
    shutil.copyfile(TAKES / "two_5.wav", rejected)
    # Adapt off the GUI thread, then the window uses the new model.
    with qtbot.waitSignal(dialog.model_ready, timeout=180000) as ready:
        assert dialog.start_adaptation()
        assert dialog.pages.currentIndex() == 2
        assert "and 1 sound(s) marked not a command" in dialog.adapt_label.text()
    assert (takes_dir / "_not_commands_" / rejected.name).is_file()
    model_dir = tmp_path / "data" / "models" / "jackson"
    assert ready.args == [str(model_dir)]
    assert "now recognizes with jackson (new: one, zero)" in dialog.adapt_label.text()
    assert window.spec.labels[-2:] == ("one", "zero")
    assert window.bars_view.commands[-2:] == ("one", "zero")
    assert "Commands: yes no up down left right on off stop go one zero" in window.model_info_label.text()
    assert window.settings.value("model") == str(model_dir.resolve())
    assert list_personal_models(tmp_path / "data" / "models") == [model_dir]
    assert window.model_combo.currentText() == "Personal: jackson"
    config = json.loads((model_dir / "config.json").read_text())
    assert config["enrollment"]["new_words"] == ["one", "zero"] and len(config["enrollment"]["takes_used"]) == 8   # + talk, the rejected

    # The personal model runs in the live pipeline, and the shipped model is one choice away.
    held_out = tmp_path / "zero_held_out.wav"
    sf.write(held_out, np.concatenate([np.zeros(8000), sf.read(TAKES / "zero_5.wav")[0], np.zeros(8000)]), 8000)
    with qtbot.waitSignal(window.session.run_finished, timeout=20000) as finished:
        window.session.start_file_playback(held_out)
    assert finished.args == [True]
    assert window.view_model.posteriors.shape == (14,)
    window.model_combo.setCurrentIndex(0)
    window.model_combo.activated.emit(0)
    assert window.spec.labels[-1] == "_silence_" and len(window.bars_view.commands) == 10
    assert window.settings.value("model") == ""


def test_a_broken_model_folder_in_the_chooser_is_an_error_and_changes_nothing(qtbot, window_and_dialog, tmp_path):
    window, _ = window_and_dialog([])
    broken = tmp_path / "data" / "models" / "broken"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{ not json")
    window.refresh_models()
    index = window.model_combo.findText("Personal: broken")
    assert index > 0
    labels = window.spec.labels
    assert not window.switch_model(window.model_combo.itemData(index))
    assert window.error_label.isVisible() and f"model folder {broken}" in window.error_label.text()
    assert window.spec.labels == labels and window.model_combo.currentText() == "Shipped model"


def test_gui_starts_with_the_model_chosen_last_time_or_falls_back_to_the_shipped_one(tmp_path):
    """`speechcmd gui` without --model reads the window's remembered choice (a fresh process, its own
    config folder)."""
    import subprocess
    import sys

    from conftest import REPO_ROOT
    personal = tmp_path / "personal"
    import shutil
    shutil.copytree(REPO_ROOT / "assets" / "model", personal)
    probe = ("import sys; from PySide6.QtCore import QSettings; "
             "from desktop_app.live_cli import _remembered_model; "
             "QSettings('speechcmd', 'speechcmd').setValue('model', sys.argv[1]); "
             "m = _remembered_model('shipped'); print(m if isinstance(m, str) else m.spec.path)")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    for folder, expected, note in ((personal, str(personal), ""), (tmp_path / "gone", "shipped", "cannot be used")):
        done = subprocess.run([sys.executable, "-c", probe, str(folder)], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected
        assert note in done.stderr


def test_a_quiet_take_is_kept_and_the_user_is_told_it_is_quiet(qtbot, window_and_dialog, tmp_path):
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, 0.02 * sf.read(TAKES / "zero_0.wav", dtype="float32")[0], 8000)
    window, dialog = window_and_dialog([quiet, TAKES / "zero_1.wav"])
    dialog.choose(new_words="zero", takes=2, name="quiet")
    dialog.keep_going.setChecked(False)
    assert dialog.begin_recording() and dialog.record_next()
    qtbot.waitUntil(lambda: dialog._recording is None and dialog.takes["zero"][0] is not None, timeout=20000)
    assert dialog.takes["zero"][0]["problem"] is None
    assert "ok, but quiet (peak -37 dBFS)" in dialog.record_status.text() and "microphone level" in dialog.record_status.text()
    assert dialog.record_next()
    qtbot.waitUntil(lambda: dialog._recording is None and dialog.takes["zero"][1] is not None, timeout=20000)
    assert dialog.record_status.text() == "zero, take 2: ok"
