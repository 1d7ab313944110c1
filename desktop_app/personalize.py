"""The window's "Personalize..." dialog: record a few takes of each word, adapt the model, switch to it.

    1 choose   built-in commands to re-record, new words typed, takes per word, 20 s of talking
    2 record   per take: the microphone opens, a countdown, "speak now", 1.5 s captured; the take is
               checked at once with enrollment's own rules (model/takes.py: silent, clipped, too long),
               its spectrogram shown; play it back or redo it
    3 adapt    model/enroll.py on a background thread with a progress bar; the window then switches
               to the new model (listening again if it was)

Everything lives in the user's data folder (Qt's AppDataLocation):
    <data>/models/<name>/                    the personal model, an ordinary model folder
    <data>/takes/<name>/<word>/take_N.wav    the recordings it was made from (kept: enroll again later)

Recording and adapting run on plain threads (desktop_app/personalize_jobs.py: `TakeRecording` only
reads the source, `EnrollJob` runs enrollment); the dialog polls them 20 times a second for the
countdown, the level, the progress and the result, so no widget is touched off the GUI thread.
"""
from __future__ import annotations

import re
import shutil
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import soundfile as sf
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (QCheckBox, QDialog, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QProgressBar, QPushButton, QSpinBox, QStackedWidget, QVBoxLayout, QWidget)

from audio.capture import CaptureError, play_samples
from audio.mel import NumpyLogMel
from desktop_app.history_panel import not_commands_dir
from desktop_app.personalize_jobs import EnrollJob, TakeRecording
from desktop_app.widgets import LevelMeter, log_mel_levels
from model.labels import UNKNOWN, command_labels
from model.takes import NOT_COMMANDS, EnrollConfig, check_take, too_short

COUNTDOWN_S = 1.5      # "3, 2, 1" after the microphone delivers, before the take is captured
TAKE_S = 1.5           # captured per take: a word is under 1 s, the rest is margin for a late start
TALK_S = 20.0          # the user talking normally: `_unknown_` material against false alarms
DEFAULT_TAKES = 5
# A take that peaks below this is kept but called quiet: 20 dB under the level of Speech Commands clips
# (median peak -5 dBFS over 300 of them), where the shipped model loses 8 points (benchmarks/quiet_input.py).
QUIET_PEAK_DBFS = -26.0
POLL_MS = 50
WORD_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class PersonalizeDialog(QDialog):
    model_ready = Signal(str)    # the folder of the new personal model (the window already uses it)

    def __init__(self, window, parent: QWidget | None = None, countdown_s: float = COUNTDOWN_S,
                 take_s: float = TAKE_S, talk_s: float = TALK_S, enroll_config: EnrollConfig | None = None,
                 data_dir: Path | None = None):
        super().__init__(parent)
        self.window = window
        self.countdown_s, self.take_s, self.talk_s = countdown_s, take_s, talk_s
        self.enroll_config = enroll_config or EnrollConfig()
        self.data_dir = Path(data_dir) if data_dir is not None else Path(window.models_dir).parent
        self.base_dir = Path(window.spec.path or "")
        self.labels = list(window.spec.labels)
        self.rate_hz = window.spec.frontend.sample_rate_hz
        self._log_mel = NumpyLogMel(window.spec.frontend)   # draws the selected take
        self.words: list[str] = []
        self.n_takes = DEFAULT_TAKES
        self.takes: dict[str, list[dict | None]] = {}    # word -> per slot {"path", "problem", "samples"}
        self.talk: dict | None = None
        self.name = ""
        self._recording: TakeRecording | None = None
        self._target: tuple[str, int] | None = None      # (word, slot) or (UNKNOWN, 0)
        self._job: EnrollJob | None = None
        self._was_listening = False
        self.setWindowTitle("Personalize: your voice, your words")
        # Modal to the window: its Start (a second stream on the microphone, a device re-scan under
        # the recording) and its model chooser must wait until the dialog is closed.
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.resize(860, 560)
        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_choose_page())
        self.pages.addWidget(self._build_record_page())
        self.pages.addWidget(self._build_adapt_page())
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._poll)

    # ------------------------------------------------------------------ page 1: choose
    def _build_choose_page(self) -> QWidget:
        page = QWidget()
        self.command_list = QListWidget()
        for label in command_labels(self.labels):
            item = QListWidgetItem(label)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.command_list.addItem(item)
        self.new_words_edit = QLineEdit()
        self.new_words_edit.setPlaceholderText("new words, separated by commas: lights, next, pause")
        self.takes_spin = QSpinBox()
        self.takes_spin.setRange(max(2, self.enroll_config.min_takes), 10)
        self.takes_spin.setValue(DEFAULT_TAKES)
        self.talk_check = QCheckBox(f"Also record {self.talk_s:g} s of you talking normally "
                                    "(teaches it what is not a command: fewer false alarms)")
        self.talk_check.setChecked(True)
        self.name_edit = QLineEdit(datetime.now().strftime("personal-%Y%m%d-%H%M"))
        self.choose_error = QLabel()
        self.choose_error.setStyleSheet("color: #b02020;")
        next_button = QPushButton("Next: record")
        next_button.clicked.connect(self.begin_recording)
        form = QVBoxLayout(page)
        form.addWidget(QLabel("Built-in commands to record in your voice (tick the ones it misses):"))
        form.addWidget(self.command_list, 1)
        form.addWidget(QLabel("New commands (lowercase letters, digits, - or _):"))
        form.addWidget(self.new_words_edit)
        row = QHBoxLayout()
        row.addWidget(QLabel("Takes per word:"))
        row.addWidget(self.takes_spin)
        row.addSpacing(16)
        row.addWidget(QLabel("Name of the personal model:"))
        row.addWidget(self.name_edit, 1)
        form.addLayout(row)
        form.addWidget(self.talk_check)
        form.addWidget(self.choose_error)
        form.addWidget(next_button, 0, Qt.AlignmentFlag.AlignRight)
        return page

    def choose(self, commands=(), new_words: str = "", takes: int = DEFAULT_TAKES, talk: bool = True,
               name: str | None = None) -> None:
        """Fill page 1 as a user would (tests drive the dialog through it)."""
        for i in range(self.command_list.count()):
            item = self.command_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in commands else Qt.CheckState.Unchecked)
        self.new_words_edit.setText(new_words)
        self.takes_spin.setValue(takes)
        self.talk_check.setChecked(talk)
        if name is not None:
            self.name_edit.setText(name)

    @Slot()
    def begin_recording(self) -> bool:
        words = [self.command_list.item(i).text() for i in range(self.command_list.count())
                 if self.command_list.item(i).checkState() == Qt.CheckState.Checked]
        for word in (w.strip().lower() for w in self.new_words_edit.text().split(",")):
            if not word:
                continue
            if not WORD_NAME.match(word):
                return self._choose_problem(f"{word!r} cannot be a command name: use lowercase letters, digits, "
                                            "- or _ (up to 32, not starting with _ or -)")
            if word in words:
                return self._choose_problem(f"{word!r} is listed twice")
            words.append(word)
        if not words:
            return self._choose_problem("choose at least one command or type a new word")
        name = self.name_edit.text().strip()
        if not WORD_NAME.match(name.lower()) or (self.data_dir / "models" / name).exists():
            return self._choose_problem(f"{name!r}: choose another name (letters, digits, - or _; not an existing model)")
        self.words, self.name, self.n_takes = words, name, self.takes_spin.value()
        if self._takes_dir().exists():
            # Takes of an earlier attempt under this name (no model was made from them): enrollment
            # reads every file in the folder, so words not chosen now must not be there.
            shutil.rmtree(self._takes_dir())
        self.takes = {word: [None] * self.n_takes for word in words}
        self.talk = None
        self.talk_button.setVisible(self.talk_check.isChecked())
        self._was_listening = self.window.session.is_listening
        self.window.session.stop()   # the microphone is the dialog's while it records
        self.word_list.clear()
        for word in words:
            self.word_list.addItem(word)
        self.word_list.setCurrentRow(0)
        self.pages.setCurrentIndex(1)
        self._refresh_record_page()
        return True

    def _choose_problem(self, message: str) -> bool:
        self.choose_error.setText(message)
        return False

    # ------------------------------------------------------------------ page 2: record
    def _build_record_page(self) -> QWidget:
        page = QWidget()
        self.word_list = QListWidget()
        self.word_list.setMaximumWidth(200)
        self.word_list.currentRowChanged.connect(lambda _: self._refresh_record_page())
        self.prompt_label = QLabel()
        self.prompt_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.prompt_label.setStyleSheet("font-size: 26pt; font-weight: bold;")
        self.hint_label = QLabel()
        self.hint_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.level_meter = LevelMeter()
        self.capture_bar = QProgressBar()
        self.capture_bar.setTextVisible(False)
        self.take_list = QListWidget()
        self.take_list.currentRowChanged.connect(lambda _: self._show_selected_take())
        self.spectrogram_plot = pg.PlotWidget(title="The selected take (log-mel)")
        self.spectrogram_plot.setMouseEnabled(False, False)
        self.spectrogram_image = pg.ImageItem()
        self.spectrogram_image.setColorMap(pg.colormap.get("viridis"))
        self.spectrogram_plot.addItem(self.spectrogram_image)
        self.spectrogram_plot.setMinimumHeight(140)
        self.record_button = QPushButton("Record next take")
        self.record_button.clicked.connect(self.record_next)
        self.redo_button = QPushButton("Redo selected")
        self.redo_button.clicked.connect(self.redo_selected)
        self.play_button = QPushButton("Play selected")
        self.play_button.clicked.connect(self.play_selected)
        self.talk_button = QPushButton(f"Record {self.talk_s:g} s of talking")
        self.talk_button.clicked.connect(self.record_talk)
        self.keep_going = QCheckBox("Keep going (next take starts by itself)")
        self.keep_going.setChecked(True)
        self.record_status = QLabel()
        self.record_status.setWordWrap(True)
        self.adapt_button = QPushButton("Adapt the model")
        self.adapt_button.clicked.connect(self.start_adaptation)
        self.back_button = back = QPushButton("Back")
        back.clicked.connect(lambda: self.pages.setCurrentIndex(0))

        right = QVBoxLayout()
        right.addWidget(self.prompt_label)
        right.addWidget(self.hint_label)
        meter_row = QHBoxLayout()
        meter_row.addWidget(QLabel("Level:"))
        meter_row.addWidget(self.level_meter)
        meter_row.addWidget(self.capture_bar, 1)
        right.addLayout(meter_row)
        takes_row = QHBoxLayout()
        takes_row.addWidget(self.take_list, 1)
        takes_row.addWidget(self.spectrogram_plot, 2)
        right.addLayout(takes_row, 1)
        buttons = QHBoxLayout()
        for widget in (self.record_button, self.redo_button, self.play_button, self.keep_going):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        buttons.addWidget(self.talk_button)
        right.addLayout(buttons)
        right.addWidget(self.record_status)
        bottom = QHBoxLayout()
        bottom.addWidget(back)
        bottom.addStretch(1)
        bottom.addWidget(self.adapt_button)
        right.addLayout(bottom)
        layout = QHBoxLayout(page)
        left = QVBoxLayout()
        left.addWidget(QLabel("Words"))
        left.addWidget(self.word_list)
        layout.addLayout(left)
        layout.addLayout(right, 1)
        return page

    def current_word(self) -> str | None:
        row = self.word_list.currentRow()
        return self.words[row] if 0 <= row < len(self.words) else None

    def good_takes(self, word: str) -> int:
        return sum(t is not None and t["problem"] is None for t in self.takes.get(word, []))

    def _refresh_record_page(self) -> None:
        for i, word in enumerate(self.words):
            self.word_list.item(i).setText(f"{word}   {self.good_takes(word)}/{self.n_takes}")
        word = self.current_word()
        if word is None:
            return
        if self._recording is None:
            self.capture_bar.setValue(0)
            self.prompt_label.setText(f"\u201c{word}\u201d")
            self.hint_label.setText("Press Record, wait for \u201cspeak now\u201d, then say the word once, "
                                    "as you would to the app.")
        self.take_list.blockSignals(True)
        selected = self.take_list.currentRow()
        self.take_list.clear()
        for slot, take in enumerate(self.takes[word]):
            if take is None:
                text = f"take {slot + 1}: not recorded"
            elif take["problem"]:
                text = f"take {slot + 1}: {take['problem']} \u2014 redo it"
            else:
                text = f"take {slot + 1}: ok ({take['sound_s']:.2f} s of sound)"
            self.take_list.addItem(text)
        self.take_list.setCurrentRow(max(0, min(selected, self.n_takes - 1)))
        self.take_list.blockSignals(False)
        self._show_selected_take()
        ready = all(self.good_takes(w) >= self.enroll_config.min_takes for w in self.words)
        busy = self._recording is not None
        self.adapt_button.setEnabled(ready and not busy)
        for button in (self.record_button, self.redo_button, self.play_button, self.talk_button, self.back_button):
            button.setEnabled(not busy)
        if self.talk is not None:
            self.talk_button.setText(f"Record {self.talk_s:g} s of talking again ({self.talk['seconds']:.0f} s kept)")

    def _show_selected_take(self) -> None:
        word, slot = self.current_word(), self.take_list.currentRow()
        take = self.takes.get(word, [None])[slot] if word is not None and slot >= 0 else None
        if take is None or take.get("samples") is None:
            self.spectrogram_image.clear()
            return
        frames = self._log_mel(take["samples"])
        self.spectrogram_image.setImage(frames, levels=log_mel_levels(self.window.spec.frontend), autoLevels=False)

    def next_missing(self) -> tuple[str, int] | None:
        """The current word's first take to record (not yet recorded or unusable), else the next word's."""
        order = self.words[self.words.index(self.current_word()):] + self.words if self.current_word() else self.words
        for word in order:
            for slot, take in enumerate(self.takes[word]):
                if take is None or take["problem"]:
                    return word, slot
        return None

    @Slot()
    def record_next(self) -> bool:
        target = self.next_missing()
        if target is None:
            self.record_status.setText("Every take is recorded: adapt the model, or redo a take.")
            return False
        return self._record(*target)

    @Slot()
    def redo_selected(self) -> bool:
        word, slot = self.current_word(), self.take_list.currentRow()
        return word is not None and slot >= 0 and self._record(word, slot)

    @Slot()
    def record_talk(self) -> bool:
        return self._record(UNKNOWN, 0)

    def _record(self, word: str, slot: int) -> bool:
        if self._recording is not None:
            return False
        try:
            source = self.window.session.source_factory(self.window.selected_device(), self.rate_hz)
        except CaptureError as exc:
            self.record_status.setText(f"Cannot record: {exc}")
            return False
        capture_s = self.talk_s if word == UNKNOWN else self.take_s
        self._target = (word, slot)
        self._recording = TakeRecording(source, self.rate_hz, self.countdown_s, capture_s)
        if word != UNKNOWN:
            self.word_list.setCurrentRow(self.words.index(word))
            self.take_list.setCurrentRow(slot)
        self._recording.start()
        self.timer.start()
        self.record_status.setText("")
        self._refresh_record_page()
        return True

    def _copy_not_commands(self) -> int:
        """The false alarms kept from the window's history go with the takes, as other speech."""
        kept = sorted(not_commands_dir(self.data_dir).glob("*.wav"))
        if kept:
            folder = self._takes_dir() / NOT_COMMANDS
            folder.mkdir(parents=True, exist_ok=True)
            for path in kept:
                shutil.copyfile(path, folder / path.name)
        return len(kept)

    def _takes_dir(self) -> Path:
        return self.data_dir / "takes" / self.name

    @Slot()
    def _poll(self) -> None:
        if self._job is not None:
            self._poll_job()
        recording = self._recording
        if recording is None:
            return
        level = recording.take_level()
        if level is not None:
            self.level_meter.show_level(level.rms_dbfs, time.monotonic(), level.peak)
        word = self._target[0]
        what = "talk normally: read something aloud, describe your day" if word == UNKNOWN else f"say \u201c{word}\u201d"
        if recording.state == "opening":
            self.prompt_label.setText("get ready...")
            self.hint_label.setText("opening the microphone")
        elif recording.state == "countdown":
            self.prompt_label.setText(str(int(np.ceil(recording.countdown_left_s / (self.countdown_s / 3 or 1)))))
            self.hint_label.setText(f"then {what}")
        elif recording.state == "recording":
            self.prompt_label.setText("speak now")
            self.hint_label.setText(what)
        self.capture_bar.setValue(int(100 * recording.fraction_captured))
        if recording.is_alive():
            return
        self._recording = None
        if self._job is None:
            self.timer.stop()
        if recording.state != "done":
            self.record_status.setText(f"Recording failed: {recording.error}")
            self._refresh_record_page()
            return
        self._keep(word, self._target[1], recording.samples)
        target = self.next_missing()
        if (word != UNKNOWN and self.keep_going.isChecked() and target is not None
                and self.takes[word][self._target[1]]["problem"] is None):
            self._record(*target)
        else:
            self._refresh_record_page()

    def _keep(self, word: str, slot: int, samples: np.ndarray) -> None:
        """Write the take where enrollment reads it and check it with enrollment's own rules."""
        folder = self._takes_dir() / word
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / ("talk.wav" if word == UNKNOWN else f"take_{slot + 1}.wav")
        sf.write(path, samples, self.rate_hz, subtype="PCM_16")
        if word == UNKNOWN:
            self.talk = {"path": path, "seconds": samples.size / self.rate_hz}
            self.record_status.setText(f"Kept {samples.size / self.rate_hz:.0f} s of talking as {UNKNOWN} material.")
            return
        frontend = self.window.spec.frontend
        take = check_take(word, path, self.enroll_config, frontend.sample_rate_hz, frontend.clip_samples)
        self.takes[word][slot] = {"path": path, "problem": take.problem, "sound_s": take.sound_s, "samples": samples}
        self._mark_too_short(word)
        problem = self.takes[word][slot]["problem"]
        if problem:
            self.record_status.setText(f"{word}, take {slot + 1}: {problem}. Press Record to redo it.")
            return
        peak_dbfs = 20 * np.log10(float(np.abs(samples).max()) + 1e-9)
        if peak_dbfs < QUIET_PEAK_DBFS:
            # Used as it is, but the shipped model loses points on input this quiet (docs/ACCURACY.md).
            self.record_status.setText(f"{word}, take {slot + 1}: ok, but quiet (peak {peak_dbfs:.0f} dBFS): "
                                       "commands are recognized less reliably; raise the microphone level "
                                       "or come closer")
        else:
            self.record_status.setText(f"{word}, take {slot + 1}: ok")

    def _mark_too_short(self, word: str) -> None:
        """Enrollment's last rule, applied as takes come in: with 3 or more good takes, one far shorter
        than their median is probably cut off or another word. An unusable take's file is removed
        (enrollment must not read it)."""
        takes = self.takes[word]
        good = [t for t in takes if t is not None and t["problem"] is None]
        for take, problem in zip(good, too_short([t["sound_s"] for t in good], self.enroll_config.short_ratio)):
            take["problem"] = problem
        for take in takes:
            if take is not None and take["problem"] and take["path"].exists():
                take["path"].unlink()

    @Slot()
    def play_selected(self) -> bool:
        word, slot = self.current_word(), self.take_list.currentRow()
        take = self.takes.get(word, [None])[slot] if word is not None and slot >= 0 else None
        if take is None:
            self.record_status.setText("Nothing to play: record the take first.")
            return False
        try:
            play_samples(take["samples"], self.rate_hz)
        except CaptureError as exc:
            self.record_status.setText(str(exc))
            return False
        return True

    # ------------------------------------------------------------------ page 3: adapt
    def _build_adapt_page(self) -> QWidget:
        page = QWidget()
        self.adapt_label = QLabel()
        self.adapt_label.setWordWrap(True)
        self.adapt_bar = QProgressBar()
        self.adapt_bar.setRange(0, 100)
        self.adapt_back = QPushButton("Back to the takes")
        self.adapt_back.clicked.connect(lambda: self.pages.setCurrentIndex(1))
        self.adapt_close = QPushButton("Close")
        self.adapt_close.clicked.connect(self.close)
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        layout.addWidget(self.adapt_label)
        layout.addWidget(self.adapt_bar)
        row = QHBoxLayout()
        row.addWidget(self.adapt_back)
        row.addStretch(1)
        row.addWidget(self.adapt_close)
        layout.addLayout(row)
        layout.addStretch(1)
        return page

    @Slot()
    def start_adaptation(self) -> bool:
        if self._job is not None or self._recording is not None:
            return False
        out_dir = self.data_dir / "models" / self.name
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        n_rejected = self._copy_not_commands()
        self._job = EnrollJob(self._takes_dir(), out_dir, self.base_dir, self.enroll_config)
        self.adapt_label.setText(f"Adapting {self.base_dir.name} to your takes of {', '.join(self.words)}"
                                 + (f" and {n_rejected} sound(s) marked not a command" if n_rejected else "") + "...")
        self.adapt_bar.setValue(0)
        self.adapt_back.setEnabled(False)
        self.adapt_close.setEnabled(False)
        self.pages.setCurrentIndex(2)
        self._job.start()
        self.timer.start()
        return True

    def _poll_job(self) -> None:
        job = self._job
        self.adapt_bar.setValue(int(100 * job.progress))
        if not job.done.is_set():
            return
        self._job = None
        self.timer.stop()
        self.adapt_close.setEnabled(True)
        if job.error is not None:
            self.adapt_label.setText(f"Could not adapt: {job.error}")
            self.adapt_label.setStyleSheet("color: #b02020;")
            self.adapt_back.setEnabled(True)
            return
        result = job.result
        skipped = f"; {len(result.skipped)} take(s) skipped" if result.skipped else ""
        new = f" (new: {', '.join(result.new_words)})" if result.new_words else ""
        if self.window.switch_model(result.out_dir):
            if self._was_listening and not self.window.session.is_running:
                self.window.session.start_live()
            self.adapt_label.setText(f"Done in {result.seconds:.0f} s: the app now recognizes with "
                                     f"{result.out_dir.name}{new}{skipped}. The shipped model stays one click "
                                     "away in the Model list."
                                     + "".join(f"\nWarning: {line}." for line in result.warnings))
        else:
            self.adapt_label.setText("Adapted, but the new model could not be used: see the main window.")
        self.adapt_label.setStyleSheet("")
        self.adapt_bar.setValue(100)
        self.model_ready.emit(str(result.out_dir))

    @property
    def busy(self) -> bool:
        """Recording or adapting: the window reuses this dialog instead of opening a second one."""
        return self._recording is not None or self._job is not None

    def reject(self) -> None:  # Qt override: Escape and the close button end up here
        if self._recording is not None:
            self._recording.cancel()   # the poll then reports it and frees the microphone
        super().reject()

    def closeEvent(self, event) -> None:  # Qt override
        if self._recording is not None:
            self._recording.cancel()
        super().closeEvent(event)
