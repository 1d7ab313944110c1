"""The main window: pick a microphone, speak, see commands recognized live, and what the network hears.

A view of a LiveSession (the model, the run, the actions, the listening mode): widgets draw and forward
user actions to it. A 20 Hz QTimer redraws the persistent plot items from the latest values stored in
the session's LiveViewModel; nothing is drawn while the window is hidden (the tray keeps listening).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QSettings, Qt, QTimer, Signal, Slot

from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                               QMainWindow, QPushButton, QSlider, QVBoxLayout, QWidget)

from audio.capture import CaptureError, InputDevice, list_input_devices, rescan_devices

from audio.file_source import FileSource
from model.detector import Detection
from model.model_config import ModelLoadError, default_model_dir
from desktop_app.actions import ActionResult
from desktop_app.history_panel import HistoryPanel
from desktop_app.listen_mode import ListenMode
from desktop_app.live_session import (SENSITIVITY_RANGE, LiveSession, SourceFactory, default_source_factory,
                                      sensitivity_to_threshold, threshold_to_sensitivity)
from desktop_app.view_model import HIDDEN_S, SPECTROGRAM_S, FileAnalysis, LiveViewModel
from desktop_app.widgets import (HIDDEN_LEVELS, log_mel_levels, CommandBars, DetectionTimeline, LastCommandLabel,
                                 LevelMeter, ScrollingImage)
from desktop_app.worker import RecognizerWorker, start_worker

REDRAW_HZ = 20
HIDDEN_VIEW_EVERY_TICKS = 2
# Blocks for the fast "Open file..." run: big blocks, few Python round trips (the result does not
# depend on the block size, see tests of the streaming recognizer).
ANALYSIS_BLOCK_MS = 1000.0
# Start loading the network this long after the window is built, if no first frame was drawn before.
LOAD_MODEL_AFTER_MS = 1000
MODE_NAMES = {ListenMode.ALWAYS: "Always", ListenMode.PUSH_TO_TALK: "Push-to-talk", ListenMode.PAUSED: "Paused"}

# (rescan) -> input devices; rescan asks PortAudio to look for new hardware first
DeviceLister = Callable[[bool], list[InputDevice]]


def default_device_lister(rescan: bool) -> list[InputDevice]:
    if rescan:
        rescan_devices()
    return list_input_devices()


class MainWindow(QMainWindow):
    first_frame_drawn = Signal()
    analysis_finished = Signal(object)         # FileAnalysis of an "Open file..." run
    hidden_to_tray = Signal()                  # closed while a tray icon keeps the app running

    def __init__(self, model=None, settings: QSettings | None = None,
                 source_factory: SourceFactory = default_source_factory,
                 device_lister: DeviceLister = default_device_lister, redraw_hz: float = REDRAW_HZ,
                 actions_path: str | Path | None = None, models_dir: str | Path | None = None,
                 session: LiveSession | None = None):
        super().__init__()
        own_session = session is None
        self.session = session if session is not None else LiveSession(model, settings, source_factory, actions_path)
        self.settings = self.session.settings
        self.device_lister = device_lister
        self._model_checked = False
        self._analysis_worker: RecognizerWorker | None = None
        self._analysis_thread = None
        self._analysis: FileAnalysis | None = None
        self._drawn_version = -1
        self._first_frame_done = False
        self._dropped_shown = None
        self._tick = 0
        self.keep_in_tray = False   # set by the tray: closing the window hides it, the app keeps listening
        self._actions_dialog = None
        self._personalize_dialog = None
        from desktop_app.personal_models import personal_models_dir
        self.models_dir = Path(models_dir) if models_dir is not None else personal_models_dir()

        self.setWindowTitle("speechcmd: live speech commands")
        self._build_widgets()
        self._restore_geometry()
        self.refresh_devices(rescan=False)
        self.refresh_models()
        s = self.session
        s.action_reported.connect(self._show_action_result)
        s.actions_changed.connect(self._show_actions)
        s.model_changed.connect(self._on_model_changed)
        s.state_changed.connect(self._show_mode)
        self._connect_view_model(s.view_model)
        self.redraw_timer = QTimer(self)
        self.redraw_timer.setInterval(int(round(1000.0 / redraw_hz)))
        self.redraw_timer.timeout.connect(self.redraw)
        self.redraw_timer.start()
        # The network loads after the first frame is drawn (its import would compete for the
        # interpreter with drawing it), or after a moment if no run starts.
        self.first_frame_drawn.connect(lambda: self.session.model.start())
        QTimer.singleShot(LOAD_MODEL_AFTER_MS, lambda: self.session.model.start())
        self._show_running(s.is_running)
        self._show_mode()
        if not s.is_running:
            self.view_model.set_status("ready: choose a microphone and press Start, or open a file")
        if own_session:
            s.load_actions(required=actions_path is not None)
        self._show_actions()

    @property
    def spec(self):
        return self.session.spec

    @property
    def view_model(self) -> LiveViewModel:
        return self.session.view_model

    # ---------------------------------------------------------------- layout
    def _build_widgets(self) -> None:
        vm, info = self.view_model, self.view_model.info
        self.device_combo = QComboBox()
        self.device_combo.setMinimumWidth(260)
        self.device_combo.setToolTip("Input device")
        self.device_combo.currentIndexChanged.connect(
            lambda _index: setattr(self.session, "device", self.device_combo.currentData()))
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(lambda: self.refresh_devices(rescan=True))
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.toggle_start_stop)
        self.open_button = QPushButton("Open file...")
        self.open_button.clicked.connect(self.open_file_dialog)
        self.sensitivity_slider = QSlider(Qt.Orientation.Horizontal)
        self.sensitivity_slider.setRange(*SENSITIVITY_RANGE)
        self.sensitivity_slider.setValue(threshold_to_sensitivity(vm.threshold))
        self.sensitivity_slider.setMinimumWidth(160)
        self.mode_combo = QComboBox()
        self.mode_combo.setToolTip("Always: every command fires. Push-to-talk: only while the key (or the button) is "
                                   "held. Paused: the microphone is closed.")
        for mode, name in MODE_NAMES.items():
            self.mode_combo.addItem(name, mode.value)
        self.mode_combo.activated.connect(self._choose_mode)
        self.talk_button = QPushButton("Hold to talk")
        self.talk_button.setToolTip("Push-to-talk: commands fire while this button (or the push-to-talk key) is held")
        self.talk_button.pressed.connect(self.session.talk_pressed)
        self.talk_button.released.connect(self.session.talk_released)
        self.sensitivity_slider.valueChanged.connect(self.set_sensitivity)
        self.sensitivity_label = QLabel()
        self.actions_switch = QCheckBox("Actions on")
        self.actions_switch.setToolTip("Run the bound programs and key presses when commands are heard")
        self.actions_switch.toggled.connect(self.session.set_actions_enabled)
        self.actions_button = QPushButton("Actions...")
        self.actions_button.clicked.connect(self.open_actions_dialog)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Microphone:"))
        controls.addWidget(self.device_combo, 1)
        controls.addWidget(self.refresh_button)
        controls.addWidget(self.start_button)
        controls.addWidget(self.mode_combo)
        controls.addWidget(self.talk_button)
        controls.addSpacing(16)
        controls.addWidget(QLabel("Sensitivity:"))
        controls.addWidget(self.sensitivity_slider)
        controls.addWidget(self.sensitivity_label)
        controls.addSpacing(16)
        controls.addWidget(self.actions_switch)
        controls.addWidget(self.actions_button)
        controls.addSpacing(16)
        controls.addWidget(self.open_button)

        self.model_combo = QComboBox()
        self.model_combo.setMinimumWidth(260)
        self.model_combo.setToolTip("The model that recognizes: the shipped one or one of your personal models")
        self.model_combo.activated.connect(lambda index: self.switch_model(self.model_combo.itemData(index)))
        self.personalize_button = QPushButton("Personalize...")
        self.personalize_button.setToolTip("Record a few takes of commands or new words and adapt the model to you")
        self.personalize_button.clicked.connect(self.open_personalize_dialog)
        model_row = QHBoxLayout()
        model_row.addWidget(QLabel("Model:"))
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.personalize_button)
        model_row.addStretch(2)

        self._make_model_views()
        self.last_command_label = LastCommandLabel()
        self.history_panel = HistoryPanel(self.spec.frontend, lambda event: self.view_model.clip_of(event),
                                          self.models_dir.parent, self.view_model.history.maxlen)
        self.history_panel.message.connect(self._show_message)
        self.history_list = self.history_panel.list
        self.model_info_label = QLabel(info.text())
        self.model_info_label.setWordWrap(True)
        self.model_info_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        last_box = QGroupBox("Last command")
        last_layout = QVBoxLayout(last_box)
        last_layout.addWidget(self.last_command_label)
        info_box = QGroupBox("Model")
        QVBoxLayout(info_box).addWidget(self.model_info_label)

        grid = QGridLayout()
        grid.addWidget(self.spectrogram_view, 0, 0)
        grid.addWidget(self.hidden_view, 1, 0)
        grid.addWidget(self.timeline_view, 2, 0)
        grid.addWidget(last_box, 0, 1)
        grid.addWidget(self.bars_view, 1, 1)
        right_bottom = QVBoxLayout()
        right_bottom.addWidget(self.history_panel, 1)
        right_bottom.addWidget(info_box)
        grid.addLayout(right_bottom, 2, 1)
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 2)
        self.grid = grid

        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: white; background: #b02020; padding: 4px;")
        self.error_label.setWordWrap(True)
        self.error_label.hide()

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addLayout(controls)
        layout.addLayout(model_row)
        layout.addWidget(self.error_label)
        layout.addLayout(grid, 1)
        self.setCentralWidget(central)

        self.status_label = QLabel()
        self.level_meter = LevelMeter()
        self.dropped_label = QLabel()
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.level_meter)
        self.statusBar().addPermanentWidget(self.dropped_label)
        self._show_dropped(0)
        self._show_sensitivity_text()

    def _connect_view_model(self, vm: LiveViewModel) -> None:
        vm.history_added.connect(self._add_history_row)
        vm.status_changed.connect(self._show_status)
        vm.running_changed.connect(self._show_running)

    def _make_model_views(self) -> None:
        """The views whose shape depends on the model: mel bands, hidden units, commands."""
        vm, info = self.view_model, self.view_model.info
        n_mels = self.spec.frontend.n_mels
        band = f"{self.spec.frontend.f_min_hz:.0f}-{self.spec.frontend.f_max_hz:.0f} Hz"
        self.spectrogram_view = ScrollingImage(f"Log-mel spectrogram (live, {n_mels} bands {band})", "mel bin",
                                               SPECTROGRAM_S, vm.spectrogram.capacity, n_mels,
                                               "viridis", log_mel_levels(self.spec.frontend))
        hidden_size = self.spec.network.top_size
        self.hidden_view = ScrollingImage("Recurrent hidden state: the network's memory", "unit", HIDDEN_S,
                                          vm.hidden.capacity, hidden_size, "CET-D4", HIDDEN_LEVELS)
        self.bars_view = CommandBars(info.commands, vm.threshold)
        self.timeline_view = DetectionTimeline(info.commands)

    # ---------------------------------------------------------------- models
    def refresh_models(self) -> None:
        """Fill the model chooser: the shipped model, every personal model, and the current one."""
        from desktop_app.personal_models import list_personal_models
        shipped = default_model_dir()
        current = self.spec.path.resolve() if self.spec.path else None
        self.model_combo.clear()
        self.model_combo.addItem("Shipped model", str(shipped))
        folders = list_personal_models(self.models_dir)
        for folder in folders:
            self.model_combo.addItem(f"Personal: {folder.name}", str(folder))
        if current is not None and current != shipped.resolve() and current not in [f.resolve() for f in folders]:
            self.model_combo.addItem(f"Folder: {current}", str(current))
        for index in range(self.model_combo.count()):
            if current is not None and Path(self.model_combo.itemData(index)).resolve() == current:
                self.model_combo.setCurrentIndex(index)

    def switch_model(self, folder: str | Path | None) -> bool:
        """Recognize with the model in `folder` (None: the shipped one); see LiveSession.switch_model."""
        ok = self.session.switch_model(folder)
        if not ok:
            self.refresh_models()
        return ok

    @Slot()
    def _on_model_changed(self) -> None:
        """The session recognizes with another model: rebuild the views whose shape depends on it."""
        self._stop_analysis()
        self._model_checked = False
        self._connect_view_model(self.view_model)
        old_views = (self.spectrogram_view, self.hidden_view, self.bars_view, self.timeline_view)
        self._make_model_views()
        for old, new in zip(old_views, (self.spectrogram_view, self.hidden_view, self.bars_view, self.timeline_view)):
            self.grid.replaceWidget(old, new)
            # Hidden and deleted by Qt later, still owned by its parent until then: unparenting it
            # would hand it to Python's garbage collector mid-paint (a crash in pyqtgraph's paintEvent).
            old.hide()
            old.deleteLater()
        self.model_info_label.setText(self.view_model.info.text())
        self.history_panel.frontend = self.spec.frontend
        self._drawn_version = -1
        self.refresh_models()
        self.redraw(full=True)

    @Slot()
    def open_personalize_dialog(self):
        from desktop_app.personalize import PersonalizeDialog
        dialog = self._personalize_dialog
        if dialog is None or not (dialog.isVisible() or dialog.busy):
            self._personalize_dialog = PersonalizeDialog(self, parent=self)
        self._personalize_dialog.show()
        self._personalize_dialog.raise_()
        return self._personalize_dialog

    # ---------------------------------------------------------------- settings
    def _restore_geometry(self) -> None:
        geometry = self.settings.value("geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 820)

    def save_settings(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.session.save_settings()

    # ---------------------------------------------------------------- devices
    def refresh_devices(self, rescan: bool = True) -> None:
        """Fill the device chooser; keeps the current (or remembered) device selected when it exists."""
        if self.session.is_running:
            return  # PortAudio cannot re-scan under an open stream
        # The first fill selects the remembered device; later ones keep the current choice.
        wanted = self.session.device
        self.device_combo.clear()
        try:
            devices = self.device_lister(rescan)
        except CaptureError as exc:
            self.view_model.on_error(str(exc))
            devices = []
        self.device_combo.addItem("System default", None)
        for device in devices:
            self.device_combo.addItem(device.describe(), device.name)
        index = self.device_combo.findData(wanted) if wanted else -1
        self.device_combo.setCurrentIndex(max(0, index))
        if rescan and devices:
            self.view_model.set_status(f"{len(devices)} input device(s) found")

    def selected_device(self) -> str | None:
        return self.device_combo.currentData()

    # ---------------------------------------------------------------- runs
    @Slot()
    def toggle_start_stop(self) -> None:
        if self.session.is_running:
            self.session.stop()
        else:
            self.session.set_mode(self.session.talk_mode)

    @Slot(int)
    def _choose_mode(self, index: int) -> None:
        mode = self.mode_combo.itemData(index)
        if mode is not None and ListenMode(mode) is not self.session.mode:
            self.session.set_mode(ListenMode(mode))

    @Slot()
    def _show_mode(self) -> None:
        """Listening mode, push-to-talk button and key: as the session has them now."""
        s = self.session
        index = self.mode_combo.findData(s.mode.value)
        if index != self.mode_combo.currentIndex():
            self.mode_combo.blockSignals(True)
            self.mode_combo.setCurrentIndex(index)
            self.mode_combo.blockSignals(False)
        push = s.talk_mode is ListenMode.PUSH_TO_TALK
        self.talk_button.setVisible(push)
        self.talk_button.setText("Talking..." if s.gate.key_down else
                                 (f"Hold to talk ({s.talk_key})" if s.key_error is None else "Hold to talk"))

    # ---------------------------------------------------------------- file analysis
    @Slot()
    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a recording", str(self.settings.value("last_dir", "")),
                                              "Audio (*.wav *.flac *.ogg);;All files (*)")
        if path:
            self.settings.setValue("last_dir", str(Path(path).parent))
            self.analyze_file(path)

    def analyze_file(self, path: str | Path) -> None:
        """Run a recording through the same recognizer as fast as possible; draw it on the timeline."""
        self._stop_analysis()
        analysis = FileAnalysis(str(path), self.spec.frontend.hop_ms)
        source = FileSource(path, self.spec.frontend.sample_rate_hz, block_ms=ANALYSIS_BLOCK_MS, realtime=False)
        worker = RecognizerWorker(self.session.model, source, threshold=self.view_model.threshold)
        worker.posteriors_ready.connect(analysis.on_frames)
        worker.detected.connect(analysis.on_detected)
        worker.error_occurred.connect(self._on_analysis_error)
        worker.finished.connect(self._on_analysis_finished)
        self._analysis, self._analysis_worker = analysis, worker
        self._analysis_thread = start_worker(worker)
        self.view_model.set_status(f"analysing {Path(path).name}...")

    @Slot(str)
    def _on_analysis_error(self, message: str) -> None:
        if self._analysis is not None:
            self._analysis.error = message
        self.view_model.on_error(message)

    @Slot()
    def _on_analysis_finished(self) -> None:
        analysis, thread = self._analysis, self._analysis_thread
        if analysis is None or self.sender() is not self._analysis_worker:
            return
        thread.wait(2000)
        self.session.keep_until_ended(self._analysis_worker, thread)
        self._analysis = self._analysis_worker = self._analysis_thread = None
        if analysis.error is None:
            posteriors = analysis.posteriors
            commands = posteriors[:, self.view_model.command_index] if posteriors.size else posteriors.reshape(0, 0)
            self.timeline_view.show_analysis(analysis.times_s, commands, analysis.detections,
                                             self.view_model.threshold, Path(analysis.path).name)
            found = ", ".join(f"{d.label} at {d.time_s:.2f} s" for d in analysis.detections[:8])
            more = " ..." if len(analysis.detections) > 8 else ""
            self.view_model.set_status(f"{Path(analysis.path).name}: {len(analysis.detections)} command(s)"
                                       + (f": {found}{more}" if found else ""))
        self.analysis_finished.emit(analysis)

    def _stop_analysis(self) -> None:
        if self._analysis_worker is not None:
            self.session.end_worker(self._analysis_worker, self._analysis_thread, self._on_analysis_finished)
            self._analysis = self._analysis_worker = self._analysis_thread = None

    # ---------------------------------------------------------------- sensitivity
    @Slot(int)
    def set_sensitivity(self, sensitivity: int) -> None:
        """Slider moved: the running worker uses the new threshold from its next frame."""
        self.session.set_threshold(sensitivity_to_threshold(sensitivity))
        self._show_sensitivity_text()
        self._drawn_version = -1

    def _show_sensitivity_text(self) -> None:
        self.sensitivity_label.setText(f"threshold {self.view_model.threshold:.2f}")

    # ---------------------------------------------------------------- actions
    @Slot()
    def _show_actions(self) -> None:
        s = self.session
        self.actions_switch.blockSignals(True)
        self.actions_switch.setChecked(s.action_runner.enabled)
        self.actions_switch.blockSignals(False)
        if s.actions_error is not None:
            self.actions_button.setText("Actions (not loaded)...")
            self.actions_button.setToolTip(f"actions not loaded: {s.actions_error}")
            return
        n = len(s.action_runner.action_set)
        self.actions_button.setText(f"Actions ({n})..." if n else "Actions...")
        self.actions_button.setToolTip("Bind commands to programs or key presses")

    @Slot()
    def open_actions_dialog(self):
        from desktop_app.actions_dialog import ActionsDialog
        if self._actions_dialog is not None and tuple(self._actions_dialog.labels) != tuple(self.spec.labels):
            self._actions_dialog.close()      # made for another model's commands
            self._actions_dialog.deleteLater()
            self._actions_dialog = None
        if self._actions_dialog is None:
            self._actions_dialog = ActionsDialog(self.session, self.session.actions_path,
                                                 self.session.action_runner.action_set,
                                                 self.spec.labels, parent=self)
        self._actions_dialog.show()
        self._actions_dialog.raise_()
        return self._actions_dialog

    @Slot(object)
    def _show_action_result(self, result: ActionResult) -> None:
        # The status bar, not the error bar: a failing action is worth a look but stops nothing.
        self._show_message(("action: " if result.ok else "action failed: ") + result.message, not result.ok)
        if not result.ok:
            import sys
            print(f"speechcmd: {result.message}", file=sys.stderr, flush=True)

    # ---------------------------------------------------------------- drawing
    @Slot()
    def redraw(self, full: bool = False) -> None:
        """Timer tick: draw the latest stored values, if anything changed since the last tick.

        `full` also draws the parts that are refreshed at a lower rate (for a final picture)."""
        vm = self.view_model
        if not self._model_checked:
            self._check_model()
        if vm.last_detection is not None:
            age_s = time.monotonic() - vm.last_detection_at
            self.last_command_label.show_detection(vm.last_detection, age_s)
        if vm.version == self._drawn_version and not full:
            return
        self._drawn_version = vm.version
        self._tick += 1
        self.spectrogram_view.show_frames(vm.spectrogram.ordered())
        # The heat map is the most expensive item to paint (128 rows); the memory it shows changes
        # slowly, so half the display rate is enough and saves about a tenth of the GUI's CPU.
        if full or self._tick % HIDDEN_VIEW_EVERY_TICKS == 0:
            self.hidden_view.show_frames(vm.hidden.ordered())
        self.bars_view.show_values(vm.command_posteriors, vm.threshold)
        self.level_meter.show_level(vm.level.rms_dbfs if vm.level else None, time.monotonic(),
                                    vm.level.peak if vm.level else 0.0)
        self._show_dropped(vm.dropped_blocks)
        if vm.last_detection is None:
            self.last_command_label.show_detection(None, 0.0)
        if not self._first_frame_done and vm.frames_seen > 0:
            self._first_frame_done = True
            self.first_frame_drawn.emit()

    def _check_model(self) -> None:
        """Once the background load has ended: a model that failed to load is reported at once, not
        only when a run needs it."""
        if not self.session.model.ready:
            return
        self._model_checked = True
        try:
            self.session.model.get()
        except ModelLoadError as exc:
            self.view_model.on_error(str(exc))

    @Slot(object)
    def _draw_first_frames(self, _update) -> None:
        # The first audio of a run is drawn at once, not at the next display tick (start-up time).
        if not self._first_frame_done:
            self.redraw()

    def _show_dropped(self, blocks: int) -> None:
        if blocks == self._dropped_shown:
            return   # style sheets are expensive to re-apply: only on change
        self._dropped_shown = blocks
        if blocks:
            self.dropped_label.setText(f"dropped audio: {blocks} block(s)")
            self.dropped_label.setStyleSheet("color: white; background: #b02020; padding: 2px;")
        else:
            self.dropped_label.setText("no audio dropped")
            self.dropped_label.setStyleSheet("color: #1a7c1a; padding: 2px;")

    @Slot(object)
    def _add_history_row(self, event: Detection) -> None:
        self.history_panel.add(event)

    @Slot(str, bool)
    def _show_message(self, message: str, is_error: bool) -> None:
        """A note in the status bar that stops nothing (an action's result, a kept clip)."""
        self.status_label.setText(message)
        self.status_label.setStyleSheet("color: #b02020;" if is_error else "")

    @Slot(str, bool)
    def _show_status(self, message: str, is_error: bool) -> None:
        self.status_label.setStyleSheet("")
        if is_error:
            self.error_label.setText(f"Error: {message}")
            self.error_label.show()
            self.status_label.setText(f"error: {message}")
        else:
            self.error_label.hide()
            self.status_label.setText(message)

    @Slot(bool)
    def _show_running(self, running: bool) -> None:
        self.start_button.setText("Stop" if running else "Start")
        self.device_combo.setEnabled(not running)
        self.refresh_button.setEnabled(not running)

    def showEvent(self, event) -> None:  # Qt override
        self.redraw_timer.start()
        self.session.set_frames_wanted(True)
        super().showEvent(event)

    # ---------------------------------------------------------------- shutdown
    def shutdown(self) -> None:
        """Stop every thread and remember the settings (idempotent)."""
        self.redraw_timer.stop()
        self._stop_analysis()
        self.save_settings()
        self.session.shutdown()

    def closeEvent(self, event) -> None:  # Qt override
        if self.keep_in_tray:
            # The tray keeps the app listening; nothing is drawn until the window opens again.
            self.redraw_timer.stop()
            self.session.set_frames_wanted(False)
            self.hide()
            event.ignore()
            self.hidden_to_tray.emit()
            return
        self.shutdown()
        super().closeEvent(event)
