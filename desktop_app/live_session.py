"""The app without its window: the model, the run on its own thread, the actions, the listening mode.

The window and the tray icon are views of one LiveSession: either may be open alone (`gui --tray`
listens without ever building the window and its plots). Audio runs in a RecognizerWorker on its own
QThread; its signals land in the LiveViewModel (GUI thread), which the window draws from.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QSettings, Qt, Signal, Slot

from audio.capture import CaptureError, ReconnectingMicrophone, SourceNotice
from audio.file_source import FileSource
from desktop_app.actions import (Action, ActionRunner, ActionSet, ActionsError, default_actions_path,
                                 load_actions)
from desktop_app.hotkey import GlobalKey, HotkeyError
from desktop_app.listen_mode import DEFAULT_TALK_KEY, RELEASE_GRACE_S, TAP_OPEN_S, ListenMode, TalkGate
from desktop_app.model_loader import BackgroundModel
from desktop_app.view_model import LiveViewModel
from desktop_app.worker import RecognizerWorker, start_worker, stop_worker
from model.model_config import ModelLoadError, default_model_dir

SETTINGS_ORGANIZATION = "speechcmd"
SETTINGS_APPLICATION = "speechcmd"
# At exit, how long a run thread that did not stop in time may still take.
STUCK_THREAD_WAIT_MS = 2000
# Sensitivity in percent, threshold = 1 - sensitivity / 100 (the window's slider: right fires more easily).
SENSITIVITY_RANGE = (5, 95)

# (device name or None for the default, sample rate) -> an object with the audio/capture source interface
SourceFactory = Callable[[str | None, int], object]


def default_source_factory(device: str | None, sample_rate_hz: int) -> ReconnectingMicrophone:
    # A lost device or audio server is reopened on its own (the run, its model state and history stay).
    return ReconnectingMicrophone(device, sample_rate_hz)


def sensitivity_to_threshold(sensitivity: int) -> float:
    return round(1.0 - sensitivity / 100.0, 2)


def threshold_to_sensitivity(threshold: float) -> int:
    return int(round((1.0 - threshold) * 100.0))


def _flag(value, default: bool) -> bool:
    return default if value is None else str(value).lower() not in ("false", "0", "")


class LiveSession(QObject):
    recognizer_started = Signal(float)   # a run's network is ready; seconds of audio it caught up on
    run_finished = Signal(bool)          # a live or playback run ended; True = without error
    action_reported = Signal(object)     # desktop_app.actions.ActionResult (emitted from action threads)
    actions_changed = Signal()           # the actions file was (re)loaded, or failed to
    model_changed = Signal()             # spec and view_model replaced: views of the model rebuild
    state_changed = Signal()             # listening, paused, push-to-talk key up/down, input lost/back
    command_fired = Signal(object)       # a Detection of a live run that passed the push-to-talk gate

    def __init__(self, model, settings: QSettings | None = None,
                 source_factory: SourceFactory = default_source_factory, actions_path: str | Path | None = None):
        super().__init__()
        # A LoadedModel, or a BackgroundModel still loading: the session needs only its spec to start.
        self.model = BackgroundModel.of(model)
        self.spec = self.model.spec
        self.settings = settings if settings is not None else QSettings(SETTINGS_ORGANIZATION, SETTINGS_APPLICATION)
        self.source_factory = source_factory
        self.view_model = LiveViewModel(self.spec)
        self._worker: RecognizerWorker | None = None
        self._thread = None
        self._run_error: str | None = None
        self._run_message = ""
        self._live_run = False               # the current run listens to a microphone (not a file)
        self.frames_wanted = True            # False while no window shows the spectrogram (the tray alone)
        self._stuck_runs: list = []          # (worker, thread) that had not ended yet; see keep_until_ended
        self.input_lost = False
        self._shut_down = False
        # Remembered choices (a damaged settings file falls back to the defaults).
        try:
            sensitivity = int(self.settings.value("sensitivity"))
        except (TypeError, ValueError):
            sensitivity = threshold_to_sensitivity(self.spec.detector.threshold)
        self.view_model.threshold = sensitivity_to_threshold(min(max(sensitivity, SENSITIVITY_RANGE[0]),
                                                                 SENSITIVITY_RANGE[1]))
        self.device: str | None = self.settings.value("device") or None
        remembered = ListenMode.parse(self.settings.value("listen_mode"), ListenMode.ALWAYS)
        self.paused_at_start = remembered is ListenMode.PAUSED
        self.talk_mode = ListenMode.ALWAYS if remembered is ListenMode.PAUSED else remembered
        self.talk_key = str(self.settings.value("talk_key") or DEFAULT_TALK_KEY)
        self.gate = TalkGate(TAP_OPEN_S if _flag(self.settings.value("talk_tap"), False) else RELEASE_GRACE_S)
        self.key_error: str | None = None    # why the global push-to-talk key is not available
        self._key: GlobalKey | None = None
        self.notify = _flag(self.settings.value("notify"), False)
        # Actions come from the user's own file only (--actions, or actions.toml in their config folder).
        self.actions_path = Path(actions_path) if actions_path is not None else default_actions_path()
        self.action_runner = ActionRunner(ActionSet(), self.action_reported.emit)
        self.action_runner.enabled = _flag(self.settings.value("actions_enabled"), True)
        self._actions_explicit = actions_path is not None
        self.actions_error: str | None = None   # why the actions file did not load (none run meanwhile)

    # ---------------------------------------------------------------- state
    @property
    def is_running(self) -> bool:
        return self._worker is not None

    @property
    def is_listening(self) -> bool:
        """A microphone run is on (always or push-to-talk)."""
        return self._worker is not None and self._live_run

    @property
    def mode(self) -> ListenMode:
        return self.talk_mode if self.is_listening else ListenMode.PAUSED

    @property
    def worker(self) -> RecognizerWorker | None:
        return self._worker

    @property
    def run_error(self) -> str | None:
        """Why the last live/playback run ended, or None when it ended without error."""
        return self._run_error

    @property
    def threshold(self) -> float:
        return self.view_model.threshold

    @property
    def state(self) -> str:
        """paused, lost (input gone, reconnecting), waiting (push-to-talk, key up), talking, listening."""
        if not self.is_listening:
            return "paused"
        if self.input_lost:
            return "lost"
        if self.talk_mode is ListenMode.PUSH_TO_TALK:
            return "talking" if self.gate.is_open() else "waiting"
        return "listening"

    def state_text(self) -> str:
        """The state in a few words (tray tooltip, tests)."""
        return {"paused": "paused (microphone closed)", "lost": "microphone lost, reconnecting",
                "waiting": f"push-to-talk: hold {self.talk_key}", "talking": "push-to-talk: talking",
                "listening": "listening"}[self.state]

    # ---------------------------------------------------------------- listening mode
    def set_mode(self, mode: ListenMode) -> None:
        """Paused closes the microphone; always and push-to-talk (re)open it on the chosen device."""
        mode = ListenMode(mode)
        if mode is ListenMode.PAUSED:
            self.stop()
        else:
            self.talk_mode = mode
            if self.is_listening:
                self._apply_talk_mode()
            else:
                self.start_live()   # applies the mode once the run is on
        self.settings.setValue("listen_mode", self.mode.value)
        self.state_changed.emit()

    def set_talk_tap(self, tap: bool) -> None:
        """Tap: a press opens the gate for TAP_OPEN_S after the key comes up; hold: only while held."""
        self.gate.open_after_release_s = TAP_OPEN_S if tap else RELEASE_GRACE_S
        self.settings.setValue("talk_tap", "true" if tap else "false")

    @property
    def talk_tap(self) -> bool:
        return self.gate.open_after_release_s > RELEASE_GRACE_S

    def set_talk_key(self, key_name: str) -> None:
        self.talk_key = key_name
        self.settings.setValue("talk_key", key_name)
        if self.is_listening:
            self._apply_talk_mode()
        self.state_changed.emit()

    def talk_pressed(self) -> None:
        """The push-to-talk key or button went down (any thread)."""
        self.gate.press()
        self.state_changed.emit()

    def talk_released(self) -> None:
        self.gate.release()
        self.state_changed.emit()

    def _apply_talk_mode(self) -> None:
        """The gate, and the key grabbed while push-to-talk listens (released when the run stops)."""
        push = self.talk_mode is ListenMode.PUSH_TO_TALK
        self.gate.reset()
        self.gate.enabled = push
        self._release_key()
        if push:
            key = GlobalKey(self.talk_key, self.talk_pressed, self.talk_released)
            try:
                key.start()
                self._key = key
                self.key_error = None
            except HotkeyError as exc:
                self.key_error = f"the push-to-talk key {self.talk_key} cannot be used ({exc}): " \
                                 "hold the window's Talk button instead"
                self.view_model.set_status(self.key_error)

    def _release_key(self) -> None:
        key, self._key = self._key, None
        if key is not None:
            key.stop()

    # ---------------------------------------------------------------- runs
    def start_live(self) -> None:
        """Listen to the chosen device. Errors (no device, cannot open, lost) show in the status."""
        try:
            source = self.source_factory(self.device, self.spec.frontend.sample_rate_hz)
        except CaptureError as exc:
            self.view_model.on_error(str(exc))
            self.state_changed.emit()
            return
        self._start_run(source, f"listening on {self.device or 'the system default input'}", live=True)
        self._apply_talk_mode()

    def start_file_playback(self, path: str | Path) -> None:
        """Play a recording through the live pipeline at real-time pace (demos, tests, screenshots)."""
        source = FileSource(path, self.spec.frontend.sample_rate_hz)
        self._start_run(source, f"playing {Path(path).name} in real time")

    def _start_run(self, source, message: str, live: bool = False) -> None:
        self.stop()
        self.view_model.reset()
        # Push-to-talk holds back the commands of a microphone run only (a file played for a look fires all).
        worker = RecognizerWorker(self.model, source, threshold=self.view_model.threshold,
                                  emit_frames=self.frames_wanted, gate=self.gate if live else None)
        vm = self.view_model
        worker.posteriors_ready.connect(vm.on_frames)
        worker.detected.connect(vm.on_detected)
        worker.event_audio.connect(vm.on_event_audio)
        # Direct: the runner only hands the action to its own threads, so it is started from the
        # worker's thread at once, whatever the GUI thread is doing.
        if live or self._actions_explicit:
            # A recording played for a look (--input-file, a screenshot) must not run the user's
            # programs or press keys unless they named the actions file for it.
            worker.detected.connect(self.action_runner.handle, Qt.ConnectionType.DirectConnection)
        if live:
            worker.detected.connect(self.command_fired)
        worker.level_changed.connect(vm.on_level)
        worker.audio_dropped.connect(vm.on_dropped)
        worker.error_occurred.connect(self._on_run_error)
        worker.input_changed.connect(self._on_input_changed)
        worker.recognizer_started.connect(self._on_recognizer_started)
        worker.finished.connect(self._on_run_finished)
        self._run_error = None
        self.input_lost = False
        self._worker = worker
        self._thread = start_worker(worker)
        vm.set_running(True)
        self._live_run = live
        self._run_message = message
        vm.set_status(message if worker.recognizer is not None else f"{message}; loading the recognizer...")
        self.state_changed.emit()

    @Slot(float)
    def _on_recognizer_started(self, caught_up_s: float) -> None:
        if self.sender() is not self._worker:
            return
        if self.view_model.error is None:
            self.view_model.set_status(f"{self._run_message} (recognizer ready, caught up on {caught_up_s:.1f} s)")
        self.recognizer_started.emit(caught_up_s)

    def stop(self) -> None:
        """Stop the run (if any) and wait for its thread."""
        worker, thread = self._worker, self._thread
        if worker is None:
            return
        self.end_worker(worker, thread, self._on_run_finished)
        self._forget_run()
        self.view_model.set_status("stopped")
        self.state_changed.emit()

    @Slot(object)
    def _on_input_changed(self, notice: SourceNotice) -> None:
        if self.sender() is not self._worker:
            return
        self.input_lost = notice.lost
        if notice.lost:
            self.view_model.on_error(notice.message)
        else:
            self.view_model.set_status(notice.message)
        self.state_changed.emit()

    @Slot(str)
    def _on_run_error(self, message: str) -> None:
        if self.sender() is self._worker:
            self._run_error = message
        self.view_model.on_error(message)

    @Slot()
    def _on_run_finished(self) -> None:
        worker, thread = self._worker, self._thread
        if worker is None or self.sender() is not worker:
            return
        thread.wait(2000)
        self.keep_until_ended(worker, thread)
        ok = self._run_error is None
        self._forget_run()
        if ok:
            self.view_model.set_status("finished")
        self.run_finished.emit(ok)
        self.state_changed.emit()

    def end_worker(self, worker: RecognizerWorker, thread, finished_slot) -> None:
        """Stop a run the user ended (its finished signal no longer reaches `finished_slot`)."""
        worker.finished.disconnect(finished_slot)
        stop_worker(worker, thread)
        self.keep_until_ended(worker, thread)

    def keep_until_ended(self, worker: RecognizerWorker, thread) -> None:
        """Destroying a QThread that still runs aborts the process: a thread that did not end in time
        stays referenced until it does."""
        if thread.isRunning():
            entry = (worker, thread)
            self._stuck_runs.append(entry)
            thread.finished.connect(lambda: self._stuck_runs.remove(entry) if entry in self._stuck_runs else None)

    def _forget_run(self) -> None:
        self._worker = None
        self._thread = None
        self._live_run = False
        self.input_lost = False
        self._release_key()
        self.view_model.set_running(False)

    def set_frames_wanted(self, wanted: bool) -> None:
        """No window to draw in (the tray alone): the worker stops sending spectrogram frames."""
        self.frames_wanted = wanted
        if self._worker is not None:
            self._worker.emit_frames = wanted

    # ---------------------------------------------------------------- sensitivity
    def set_threshold(self, threshold: float) -> None:
        """The running worker uses the new threshold from its next frame."""
        self.view_model.threshold = threshold
        if self._worker is not None:
            self._worker.set_threshold(threshold)

    # ---------------------------------------------------------------- models
    def switch_model(self, folder: str | Path | None) -> bool:
        """Recognize with the model in `folder` (None: the shipped one) from now on. A live run is
        restarted on the same device with the new model; the history stays. False (and the error
        shown) when the folder does not hold a usable model."""
        folder = Path(folder) if folder else default_model_dir()
        try:
            model = BackgroundModel.from_folder(folder)
        except ModelLoadError as exc:
            self.view_model.on_error(str(exc))
            return False
        resume = self.is_listening
        self.stop()
        history = list(self.view_model.history)
        threshold = self.view_model.threshold
        self.model = model
        self.spec = model.spec
        vm = LiveViewModel(self.spec)
        vm.threshold = threshold
        vm.history.extend(history)
        vm.event_clips.extend(self.view_model.event_clips)
        self.view_model = vm
        model.start()   # the network loads in the background, as at start-up
        shipped = folder.resolve() == default_model_dir().resolve()
        self.settings.setValue("model", "" if shipped else str(folder.resolve()))
        self.model_changed.emit()
        self.load_actions(required=False)   # the file may bind words only this model has
        if resume:
            self.start_live()
        if vm.error is None:
            vm.set_status(f"now recognizing with {'the shipped model' if shipped else folder.name}"
                          + (f" ({', '.join(vm.info.commands)})" if not shipped else "")
                          + ("; listening" if resume else ""))
        return True

    # ---------------------------------------------------------------- actions
    def load_actions(self, required: bool) -> None:
        """Read the actions file; a missing default file means no actions, any other problem is shown
        (and no action runs) until the file is fixed or saved from the dialog."""
        if not required and not self.actions_path.is_file():
            return
        self.actions_error = None
        try:
            self.set_action_set(load_actions(self.actions_path, self.spec.labels))
        except ActionsError as exc:
            self.set_action_set(ActionSet())   # the old bindings must not keep firing
            self.actions_error = str(exc)
            self.view_model.on_error(f"actions not loaded: {exc}")
            self.actions_changed.emit()

    def set_action_set(self, action_set: ActionSet) -> None:
        self.action_runner.set_actions(action_set)
        self.actions_changed.emit()

    def set_actions_enabled(self, enabled: bool) -> None:
        self.action_runner.enabled = enabled
        self.settings.setValue("actions_enabled", "true" if enabled else "false")
        self.actions_changed.emit()

    def try_action(self, action: Action, action_set: ActionSet | None = None) -> bool:
        return self.action_runner.try_action(action, action_set.key_tool if action_set else None)

    def set_notify(self, notify: bool) -> None:
        self.notify = notify
        self.settings.setValue("notify", "true" if notify else "false")

    # ---------------------------------------------------------------- settings and shutdown
    def save_settings(self) -> None:
        self.settings.setValue("sensitivity", threshold_to_sensitivity(self.view_model.threshold))
        self.settings.setValue("device", self.device or "")   # "" = the system default
        self.settings.setValue("listen_mode", self.mode.value)
        self.settings.sync()

    def shutdown(self) -> None:
        """Stop every thread and remember the settings (idempotent)."""
        if self._shut_down:
            return
        self._shut_down = True
        self.save_settings()   # first: the mode remembered is the one in use, not "paused" by the stop
        self.action_runner.close(wait=False)
        self.stop()
        # A thread kept because it had not ended in time gets a last chance before the app exits
        # (Qt aborts the process when a running QThread is destroyed).
        for _, thread in list(self._stuck_runs):
            thread.wait(STUCK_THREAD_WAIT_MS)
