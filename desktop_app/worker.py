"""The recognizer worker: the second of the three threads (PortAudio callback -> worker -> GUI).

It drains an audio source (microphone or file, see audio/capture.py), runs the one StreamingRecognizer
and emits what happened as Qt signals carrying small frozen dataclasses. Signals cross into the GUI
thread as queued connections, so the worker never touches a widget.

Lifecycle: one worker and one QThread per run (start -> stop or end of file). `start_worker` wires
them; `stop_worker` interrupts, quits and waits, which is the clean shutdown of Qt's examples.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot


from audio.capture import CaptureError, Pacer
from audio.io import AudioReadError
from audio.mel import NumpyStreamingLogMel
from desktop_app.model_loader import BackgroundModel
from model.model_config import ModelLoadError
from model.stream_update import StreamUpdate

# How long one read may wait for audio: bounds how quickly the loop notices a stop request.
READ_TIMEOUT_S = 0.05
# The level meter needs no more than ten updates a second; each signal costs a cross-thread event.
LEVEL_EVERY_S = 0.1
# Audio kept with each detection: the word that fired (it ends at most ~0.3 s before the event) and
# what came before it.
EVENT_AUDIO_S = 2.0
# Audio kept while the network loads (for the catch-up); beyond it the load counts as failed.
MAX_PENDING_S = 60.0


@dataclass(frozen=True)
class InputLevel:
    rms_dbfs: float           # over the audio since the previous level; -inf for digital silence
    peak: float               # largest absolute sample over that audio, 0..1 (1 = clipping)


class LevelAccumulator:
    """Level over several blocks: RMS and peak of all samples added since the last `take`."""

    def __init__(self):
        self._clear()

    def _clear(self) -> None:
        self._square_sum, self._n_samples, self._peak = 0.0, 0, 0.0

    @property
    def n_samples(self) -> int:
        return self._n_samples

    def add(self, block: np.ndarray) -> None:
        self._square_sum += float(np.dot(block, block))
        self._n_samples += block.size
        self._peak = max(self._peak, float(np.max(np.abs(block))))

    def take(self) -> InputLevel:
        rms = math.sqrt(self._square_sum / max(1, self._n_samples))
        level = InputLevel(20.0 * math.log10(rms) if rms > 0 else -math.inf, self._peak)
        self._clear()
        return level


class RecognizerWorker(QObject):
    """Runs `source` through a StreamingRecognizer until stopped, the file ends, or an error.

    `run()` is the thread's body; everything else is safe to call from the GUI thread.

    `model` may still be loading (a BackgroundModel): until it is ready a live run draws the
    spectrogram from a numpy frontend and keeps the audio, then the recognizer catches up over it.
    """

    detected = Signal(object)           # model.detector.Detection
    event_audio = Signal(object, object)  # (the same Detection, int16 [n]: the EVENT_AUDIO_S of audio it fired on)
    posteriors_ready = Signal(object)   # model.streaming.StreamUpdate (frames of one recognizer call)
    level_changed = Signal(object)      # InputLevel
    audio_dropped = Signal(int)         # total blocks dropped or overflowed so far (only when it grows)
    error_occurred = Signal(str)        # one line for the user; the run has ended
    input_changed = Signal(object)      # audio.capture.SourceNotice: input lost (reconnecting) / back
    recognizer_started = Signal(float)  # the network is ready; seconds of audio it caught up on
    finished = Signal()                 # always emitted last, error or not

    def __init__(self, model, source, threshold: float | None = None, emit_frames: bool = True, gate=None):
        super().__init__()
        self.model = BackgroundModel.of(model)   # a LoadedModel is wrapped as already loaded
        self.source = source
        self.recognizer = None                   # StreamingRecognizer, once the network is loaded
        self._threshold = float(threshold) if threshold is not None else self.model.spec.detector.threshold
        self.emit_frames = emit_frames
        self.gate = gate    # listen_mode.TalkGate: push-to-talk holds back the commands reported while closed
        self._stop = threading.Event()
        self._level = LevelAccumulator()
        # The last EVENT_AUDIO_S of audio heard: what made a command fire (its history row can play it,
        # and "Not a command" keeps it). A fixed ring: bounded memory however long the run.
        self._recent = np.zeros(int(EVENT_AUDIO_S * self.model.spec.frontend.sample_rate_hz), np.float32)
        self._recent_at = 0                      # where the next sample goes
        frontend = self.model.spec.frontend
        self._level_every_samples = int(LEVEL_EVERY_S * frontend.sample_rate_hz)
        # While the network loads: the audio heard so far and a torch-free spectrogram of it.
        self._pending: list[np.ndarray] = []
        self._pending_samples = 0
        self._display = NumpyStreamingLogMel(frontend)
        self._display_frames = 0
        if self.model.loaded is not None:
            self._start_recognizer(self.model.loaded)

    @property
    def threshold(self) -> float:
        return self._threshold

    def set_threshold(self, value: float) -> None:
        """Takes effect from the next recognizer call (at most 80 ms away). Called from the GUI thread:
        the detector reads this one float attribute per call, and rebinding an attribute is atomic in
        Python, so no lock and no queued call (which would wait behind audio already in flight)."""
        self._threshold = float(value)
        recognizer = self.recognizer
        if recognizer is not None:
            recognizer.threshold = self._threshold

    def stop(self) -> None:
        """Ask the loop to end (thread-safe); it notices within READ_TIMEOUT_S."""
        self._stop.set()

    def _should_stop(self) -> bool:
        thread = QThread.currentThread()
        return self._stop.is_set() or (thread is not None and thread.isInterruptionRequested())

    @Slot()
    def run(self) -> None:
        dropped_reported = 0
        try:
            self.source.start()
            realtime = getattr(self.source, "realtime", True)
            # A file analysed as fast as possible has nothing to show meanwhile: it waits for the model.
            if self.recognizer is None:
                model = self.model.get() if realtime else self._wait_for_model()
                if model is not None:
                    self._start_recognizer(model)
            # Live sources are read once per Pacer tick (everything captured meanwhile, one recognizer
            # call); a file analysed as fast as possible is read block by block.
            pacer = Pacer() if realtime else None
            take_notices = getattr(self.source, "take_notices", list)   # only a reconnecting microphone has them
            while not self._should_stop():
                if pacer is not None:
                    pacer.wait()
                block = self.source.read(READ_TIMEOUT_S)
                for notice in take_notices():
                    self.input_changed.emit(notice)
                dropped = self.source.dropped_blocks + self.source.overflows
                if dropped != dropped_reported:
                    dropped_reported = dropped
                    self.audio_dropped.emit(dropped)
                if block is not None and block.size:
                    self._process(block)
                if self.source.finished:
                    break
            if self.recognizer is None and self.source.finished and not self._should_stop():
                # A recording that ended while the network was loading: its commands still count.
                model = self._wait_for_model()
                if model is not None:
                    self._emit(self._catch_up(model))
        except (CaptureError, AudioReadError, ModelLoadError) as exc:
            self.error_occurred.emit(str(exc))
        except Exception as exc:  # never let the thread die silently: the GUI must hear about it
            self.error_occurred.emit(f"recognizer stopped: {type(exc).__name__}: {exc}")
        finally:
            self.source.stop()
            self.finished.emit()

    def _start_recognizer(self, model) -> None:
        from model.streaming import StreamingRecognizer   # torch: imported once the model is loaded
        recognizer = StreamingRecognizer(model)
        recognizer.threshold = self._threshold
        self.recognizer = recognizer
        # Again: set_threshold may have run between the two lines above and seen no recognizer yet.
        recognizer.threshold = self._threshold

    def _remember(self, block: np.ndarray) -> None:
        ring, n = self._recent, min(block.size, self._recent.size)
        first = min(n, ring.size - self._recent_at)          # up to the end of the ring, then from its start
        ring[self._recent_at:self._recent_at + first] = block[block.size - n:block.size - n + first]
        ring[:n - first] = block[block.size - n + first:]
        self._recent_at = (self._recent_at + n) % ring.size

    def _recent_audio(self) -> np.ndarray:
        """The ring in time order, as int16."""
        ordered = np.concatenate([self._recent[self._recent_at:], self._recent[:self._recent_at]])
        return np.round(np.clip(ordered, -1.0, 1.0) * 32767.0).astype(np.int16)

    def _process(self, block: np.ndarray) -> None:
        self._remember(block)
        if self.recognizer is not None:
            update = self.recognizer.process(block)
        else:
            update = self._process_while_loading(block)
        self._level.add(block)
        if self._level.n_samples >= self._level_every_samples:
            self.level_changed.emit(self._level.take())
        self._emit(update)

    def _emit(self, update: StreamUpdate) -> None:
        if self.emit_frames and update.log_mel.shape[0]:
            self.posteriors_ready.emit(update)
        for event in update.events:
            if self.gate is None or self.gate.allows():
                self.detected.emit(event)
                self.event_audio.emit(event, self._recent_audio())

    def _wait_for_model(self):
        """The loaded model, waiting for it in short steps so that stop() is still heard (None then)."""
        while not self._should_stop():
            model = self.model.wait(READ_TIMEOUT_S)   # raises ModelLoadError if loading failed
            if self.model.ready:
                return model
        return None

    def _process_while_loading(self, block: np.ndarray) -> StreamUpdate:
        self._pending.append(block)
        self._pending_samples += block.size
        model = self.model.get()            # raises ModelLoadError if loading failed
        if model is not None:
            return self._catch_up(model)
        if self._pending_samples > MAX_PENDING_S * self.model.spec.frontend.sample_rate_hz:
            # The audio kept for the catch-up must not grow without end: a network that has not
            # loaded in this long will not (a GRU loads in well under a second).
            raise ModelLoadError(f"the recognizer did not load within {MAX_PENDING_S:g} s; restart the app")
        spec = self.model.spec
        frames = self._display.process(block)
        n = frames.shape[0]
        update = StreamUpdate(self._display_frames, frames, np.zeros((n, len(spec.labels)), np.float32),
                              np.zeros((n, spec.network.top_size), np.float32), [])
        self._display_frames += n
        return update

    def _catch_up(self, model) -> StreamUpdate:
        """Start the recognizer and run it over everything heard so far: detections keep their true
        stream times. Its first frames were already drawn from the numpy frontend (same samples, same
        framing), so the update returned holds only the frames after those."""
        self._start_recognizer(model)
        audio = np.concatenate(self._pending) if self._pending else np.zeros(0, np.float32)
        self._pending, self._pending_samples = [], 0
        self.recognizer_started.emit(audio.size / self.model.spec.frontend.sample_rate_hz)
        caught_up = self.recognizer.process(audio)
        skip = self._display_frames
        return StreamUpdate(skip, caught_up.log_mel[skip:], caught_up.posteriors[skip:], caught_up.hidden[skip:],
                            caught_up.events)


def start_worker(worker: RecognizerWorker) -> QThread:
    """Move `worker` to a new QThread and start it; the thread quits when the worker finishes."""
    thread = QThread()
    thread.setObjectName("recognizer")
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # Direct: quit() is thread-safe, and the thread must end even while the GUI thread is blocked
    # (e.g. in wait()); a queued quit would wait for the GUI's event loop.
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    thread.start()
    return thread


def stop_worker(worker: RecognizerWorker, thread: QThread, timeout_ms: int = 3000) -> bool:
    """Interrupt, quit, wait. True when the thread has ended within `timeout_ms`."""
    worker.stop()
    thread.requestInterruption()
    thread.quit()
    return thread.wait(timeout_ms)

