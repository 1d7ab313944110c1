"""Live audio in: a microphone (PortAudio via sounddevice); audio/file_source.py serves a file the same way.

Both sources share one small interface, so the recognizer worker and `speechcmd listen` do not care
where the samples come from:

    source.start()                  # opens the device / file; raises CaptureError / AudioReadError
    block = source.read(timeout_s)  # [n] float32 mono at the model's rate, or None when nothing came
    source.finished                 # True once a file has been played to the end (never for a mic)
    source.dropped_blocks           # blocks lost because the reader fell behind or the device overflowed
    source.stop()                   # idempotent; safe after an error

Threading (three threads, two hand-offs; DEVELOPERS.md): the PortAudio callback runs on PortAudio's own thread and only
copies the block into a bounded queue with `put_nowait`; it counts what it could not queue and never
blocks, logs or touches torch or Qt. Resampling to the model's rate and every error check happen in
`read()`, on the caller's thread, so an error always reaches the caller instead of dying in the audio
thread.

This is the only module that imports sounddevice, and it does so lazily: importing sounddevice fails
when the PortAudio library is missing, and that must become a clear CaptureError, not an ImportError
at program start.
"""
from __future__ import annotations

import atexit
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from audio.io import StreamResampler


class CaptureError(Exception):
    """No audio input, an invalid device, or a device lost mid-stream. The message says which."""


# Capture in 20 ms blocks: PortAudio's input latency is about two blocks, so small blocks hand audio
# over sooner. The recognizer does not run per block: see `Pacer`.
DEFAULT_BLOCK_MS = 20.0
# The live loops (GUI worker, `listen`) run the recognizer once per 80 ms on everything captured
# meanwhile. Its cost is mostly per call and per wake-up (cold caches: a call costs about twice as
# much when woken every 40 ms as when run back to back), so fewer, larger calls save CPU: the GUI's
# recognizer thread went from 7.1% to 4.6% of a core (v4, measure_live.py; commit 2273023). The price
# is up to 80 ms (40 ms on average) of waiting, more than paid back by the lower input latency of 20 ms
# capture blocks.
PROCESS_EVERY_MS = 80.0
# About 2 s of audio may wait in the queue before blocks are dropped (the GUI can stall that long
# without losing audio, but no longer: stale audio is worth less than live audio).
DEFAULT_QUEUE_MS = 2000.0
# A running stream that delivers nothing for this long is treated as lost. PulseAudio (through the
# ALSA plugin) can take about 1 s to deliver the first block of a new stream, so keep this well above.
DEFAULT_STALL_S = 4.0
# How long stop() waits for PortAudio to close a stream before abandoning it (a dead audio server).
STREAM_CLOSE_TIMEOUT_S = 2.0


class Pacer:
    """Lets a loop run at most once every `every_ms`: `wait()` sleeps until the next tick.

    Ticks keep their rhythm (no drift) unless the loop falls behind, then the next tick is one
    interval after now instead of a burst of catch-up ticks."""

    def __init__(self, every_ms: float = PROCESS_EVERY_MS):
        self.every_s = every_ms / 1000.0
        self._next_s: float | None = None

    def wait(self) -> None:
        now = time.monotonic()
        if self._next_s is None or self._next_s <= now:   # the first tick, or the loop fell behind
            self._next_s = now + self.every_s
            return
        time.sleep(self._next_s - now)
        self._next_s += self.every_s


def _sounddevice():
    """The sounddevice module, or a CaptureError when PortAudio cannot be loaded."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError("PortAudio library not found")
        raise CaptureError(f"audio input unavailable: {exc} (install PortAudio, e.g. apt install libportaudio2)") from None
    except ImportError as exc:
        raise CaptureError(f"audio input unavailable: {exc} (pip install sounddevice)") from None
    _silence_alsa_messages()
    return sounddevice


_ALSA_HANDLER = None
_NATIVE_NOISE = (b"Expression '", b"ALSA lib ")   # PortAudio's and ALSA's own C-level error prints
_stderr_filtered = False


def filter_native_audio_messages() -> None:
    """For the terminal commands (`listen`, `gui`): PortAudio prints "Expression '...' failed in
    pa_linux_alsa.c" lines to file descriptor 2 from C when a device or the audio server dies (its
    debug-print hook is not exported by the distribution builds), before this product's own one-line
    report of the same event. Python's sys.stderr moves to a copy of the terminal's descriptor, and
    descriptor 2 (what C writes to) goes through a thread that drops those lines and passes the rest."""
    global _stderr_filtered
    if _stderr_filtered or os.name != "posix":
        return
    _stderr_filtered = True
    sys.stderr.flush()
    try:
        terminal = os.dup(2)
    except OSError:   # no descriptor 2 (some launchers close it): nothing to filter
        return
    sys.stderr = open(terminal, "w", buffering=1, errors="backslashreplace", closefd=False)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward() -> None:
        with open(read_end, "rb", buffering=0) as pipe:
            for line in iter(pipe.readline, b""):
                if not line.startswith(_NATIVE_NOISE):
                    os.write(terminal, line)

    threading.Thread(target=forward, name="native-stderr-filter", daemon=True).start()


def _silence_alsa_messages() -> None:
    """ALSA's library prints its errors ("ALSA lib pcm_pulse.c: ... Connection terminated") straight to
    the terminal from C when the audio server goes away; this product reports the same event as one
    CaptureError line, so ALSA's own handler is replaced by one that drops them (Linux only; a no-op
    where libasound is absent)."""
    global _ALSA_HANDLER
    if _ALSA_HANDLER is not None:
        return
    import ctypes
    import ctypes.util
    name = ctypes.util.find_library("asound")
    if not name:
        _ALSA_HANDLER = False
        return
    try:
        asound = ctypes.CDLL(name)
        handler_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                                        ctypes.c_char_p)
        _ALSA_HANDLER = handler_type(lambda *_: None)   # kept referenced: ALSA calls it later
        asound.snd_lib_error_set_handler(_ALSA_HANDLER)
    except (OSError, AttributeError):
        _ALSA_HANDLER = False


def play_samples(samples: np.ndarray, sample_rate_hz: int) -> None:
    """Play a take back on the default output (returns at once). CaptureError when there is none."""
    sd = _sounddevice()
    try:
        sd.play(np.asarray(samples, np.float32), int(sample_rate_hz))
    except (sd.PortAudioError, ValueError) as exc:
        raise CaptureError(f"cannot play the take: {exc}") from None


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    host_api: str
    max_input_channels: int
    default_rate_hz: int
    is_default: bool

    def describe(self) -> str:
        mark = " (default)" if self.is_default else ""
        return f"{self.index}: {self.name} [{self.host_api}, {self.default_rate_hz} Hz]{mark}"


# Streams whose close never returned (their audio server died under them). PortAudio cannot be
# terminated while one exists: Pa_Terminate would wait for it forever.
_stuck_streams: list = []


def rescan_devices() -> None:
    """Make PortAudio look for devices again (it enumerates them only once, when initialised).

    Needed after a device is plugged in or an audio server starts. Must not be called while a stream
    is open. Does nothing after a stream got stuck on a dead audio server (the list stays as it was).
    """
    if _stuck_streams:
        return
    sd = _sounddevice()
    # The only way to see a new device: PortAudio has no re-scan (hotplug is unfinished upstream,
    # PortAudio/portaudio#11) and sounddevice none either; its maintainer gives _terminate/_initialize
    # as the way (spatialaudio/python-sounddevice#125). Private API, so it lives here alone, and
    # tests/test_capture.py and the virtual-microphone fixture (a server started after PortAudio)
    # would fail if it stopped working.
    sd._terminate()
    sd._initialize()


def list_input_devices() -> list[InputDevice]:
    """Every device with at least one input channel. Raises CaptureError when PortAudio is missing."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        host_apis = sd.query_hostapis()
    except sd.PortAudioError as exc:
        raise CaptureError(f"cannot list audio devices: {exc}") from None
    default_index = _default_input_index(sd)
    found = []
    for info in devices:
        if info["max_input_channels"] < 1:
            continue
        found.append(InputDevice(
            index=int(info["index"]), name=str(info["name"]),
            host_api=str(host_apis[info["hostapi"]]["name"]),
            max_input_channels=int(info["max_input_channels"]),
            default_rate_hz=int(round(info["default_samplerate"])),
            is_default=int(info["index"]) == default_index))
    return found


def _default_input_index(sd) -> int:
    try:
        index = sd.default.device[0]
        if index is None or index < 0:
            index = sd.query_devices(kind="input")["index"]
        return int(index)
    except (sd.PortAudioError, ValueError, TypeError):
        return -1


def find_input_device(spec: str | int | None) -> InputDevice:
    """The device named by `spec`: None = the system default, an index, or (part of) a name.

    Raises CaptureError when there is no such input device (message lists the choices).
    """
    devices = list_input_devices()
    if not devices:
        raise CaptureError("no audio input device found (is a microphone connected and an audio server running?)")
    choices = "; ".join(d.describe() for d in devices)
    if spec is None or (isinstance(spec, str) and spec.strip() == ""):
        for device in devices:
            if device.is_default:
                return device
        return devices[0]
    text = str(spec).strip()
    if text.lstrip("-").isdigit():
        for device in devices:
            if device.index == int(text):
                return device
        raise CaptureError(f"no input device with index {text} (choices: {choices})")
    exact = [d for d in devices if d.name.lower() == text.lower()]
    if exact:
        return exact[0]
    partial = [d for d in devices if text.lower() in d.name.lower()]
    if len(partial) == 1:
        return partial[0]
    if partial:
        raise CaptureError(f"input device name {text!r} is ambiguous (matches: {'; '.join(d.describe() for d in partial)})")
    raise CaptureError(f"no input device matches {text!r} (choices: {choices})")


class MicrophoneSource:
    """A PortAudio input stream resampled to `sample_rate_hz`.

    The stream runs at the device's own default rate (48 kHz, 44.1 kHz...) and `read()` resamples in
    streaming mode, so blocks of any size join without clicks.
    """

    realtime = True   # audio arrives at the pace it is spoken (as a FileSource with realtime=True)

    def __init__(self, device: str | int | None = None, sample_rate_hz: int = 16000,
                 block_ms: float = DEFAULT_BLOCK_MS, queue_ms: float = DEFAULT_QUEUE_MS,
                 stall_s: float = DEFAULT_STALL_S):
        self.device_spec = device
        self.sample_rate_hz = int(sample_rate_hz)
        self.block_ms = float(block_ms)
        self.stall_s = float(stall_s)
        self.finished = False          # a microphone never runs out
        self.device: InputDevice | None = None
        self.device_rate_hz: int | None = None
        self.input_latency_s: float | None = None
        # Written only by the PortAudio callback thread (single writer), read by the caller.
        self.dropped_blocks = 0
        self.overflows = 0
        self._queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=max(2, int(queue_ms / block_ms)))
        self._stream = None
        self._resampler: StreamResampler | None = None
        self._stream_ended = threading.Event()
        self._last_block_at = 0.0
        self._received_any = False

    @property
    def name(self) -> str:
        return self.device.name if self.device else str(self.device_spec or "default input")

    def start(self) -> None:
        """Open and start the stream. Raises CaptureError (no device, invalid device, cannot open)."""
        if self._stream is not None:
            return
        sd = _sounddevice()
        self.device = find_input_device(self.device_spec)
        self.device_rate_hz = self.device.default_rate_hz
        block_frames = max(1, int(round(self.device_rate_hz * self.block_ms / 1000.0)))
        self._resampler = StreamResampler(self.device_rate_hz, self.sample_rate_hz)
        self._stream_ended.clear()
        try:
            stream = sd.InputStream(device=self.device.index, channels=1, samplerate=self.device_rate_hz,
                                    blocksize=block_frames, dtype="float32", latency="low",
                                    callback=self._callback, finished_callback=self._stream_ended.set)
            stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            raise CaptureError(f"cannot open input device {self.device.name!r}: {exc}") from None
        self._stream = stream
        self.input_latency_s = float(stream.latency)
        self._last_block_at = time.monotonic()
        self._received_any = False

    def _callback(self, indata, frames, time_info, status) -> None:
        # PortAudio's thread: copy and queue only. Anything slower here makes the device overflow.
        if status.input_overflow:
            self.overflows += 1
        try:
            self._queue.put_nowait(indata[:, 0].copy())
        except queue.Full:
            self.dropped_blocks += 1

    def read(self, timeout_s: float = 0.1) -> np.ndarray | None:
        """Everything captured so far, resampled: [n] float32 (n may be 0 while the resampler fills).

        Waits up to `timeout_s` for the first block; None when nothing arrived. Raises CaptureError
        when the stream has stopped or stalled (device unplugged, audio server gone).
        """
        if self._stream is None:
            raise CaptureError("the input stream is not running (call start() first)")
        try:
            blocks = [self._queue.get(timeout=timeout_s)]
        except queue.Empty:
            self._check_alive()
            return None
        # Take whatever else is waiting: one resampler and recognizer call instead of several.
        while True:
            try:
                blocks.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self._last_block_at = time.monotonic()
        self._received_any = True
        return self._resampler.process(np.concatenate(blocks))

    def _check_alive(self) -> None:
        stream = self._stream
        try:
            active = stream.active
        except _sounddevice().PortAudioError:   # the server or device is gone under the stream
            active = False
        if self._stream_ended.is_set() or not active:
            raise CaptureError(f"input device {self.name!r} stopped delivering audio (disconnected?)")
        silent_s = time.monotonic() - self._last_block_at
        if silent_s > self.stall_s:
            what = "no audio" if not self._received_any else "audio stopped"
            raise CaptureError(f"input device {self.name!r}: {what} for {silent_s:.1f} s (disconnected or busy?)")

    def stop(self) -> None:
        """Stop and close the stream; idempotent. Never raises: a lost device was already reported by read()."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        sd = _sounddevice()

        def close() -> None:
            try:
                stream.abort()  # abort, not stop: do not wait for buffers of a device that may be gone
            except sd.PortAudioError:
                pass
            try:
                stream.close()
            except sd.PortAudioError:
                pass
        # PortAudio's abort can block for good when the audio server died under the stream (seen with
        # PulseAudio killed mid-stream): close on a helper thread and give up on it after a while,
        # so that stopping (and the app) never hangs on a vanished device.
        closer = threading.Thread(target=close, name="close-input-stream", daemon=True)
        closer.start()
        closer.join(STREAM_CLOSE_TIMEOUT_S)
        if closer.is_alive():
            _stuck_streams.append(stream)
            # sounddevice terminates PortAudio at exit, which would now hang the process's exit too.
            exit_handler = getattr(sd, "_exit_handler", None)
            if exit_handler is not None:
                atexit.unregister(exit_handler)
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break


# While the input is lost, how often to try to open it again.
RECONNECT_EVERY_S = 1.0


@dataclass(frozen=True)
class SourceNotice:
    """A change of a live input that the user should see (`ReconnectingMicrophone.take_notices`)."""
    lost: bool          # True: the input went away (reconnecting); False: audio flows again
    message: str


class ReconnectingMicrophone:
    """A MicrophoneSource that outlives its device or audio server.

    When the stream dies or stalls, `read()` does not raise: it closes the stream, records a notice
    ("lost ...; reconnecting") and from then on tries every `retry_every_s` to open the same device
    again (by name, after a PortAudio re-scan; the system default when that name is gone). Listening
    counts as resumed, with a second notice, at the first block of audio from the new stream. The
    caller keeps its recognizer, so the model state and the history survive. Only the first start()
    raises CaptureError (no such device: the user must know at once). `make_source(device, rate)`
    builds the inner stream (tests give it a fake)."""

    realtime = True

    def __init__(self, device: str | int | None = None, sample_rate_hz: int = 16000,
                 retry_every_s: float = RECONNECT_EVERY_S, make_source=None):
        self.device_spec = device
        self.sample_rate_hz = int(sample_rate_hz)
        self.retry_every_s = float(retry_every_s)
        self.finished = False
        self._make_source = make_source or (lambda spec, rate: MicrophoneSource(spec, rate))
        self._source = None
        self._device_name: str | None = None   # what to come back to
        self._notices: list[SourceNotice] = []
        self._lost_at: float | None = None
        self._reopened = False                 # a new stream is open but has delivered nothing yet
        self._next_try_at = 0.0
        self._fallback_note = ""
        self._dropped_before = 0
        self._overflows_before = 0
        self.reconnects = 0

    @property
    def name(self) -> str:
        if self._source is not None:
            return self._source.name
        return self._device_name or str(self.device_spec or "default input")

    @property
    def device_rate_hz(self) -> int | None:
        return getattr(self._source, "device_rate_hz", None)

    @property
    def connected(self) -> bool:
        return self._lost_at is None

    @property
    def dropped_blocks(self) -> int:
        return self._dropped_before + (self._source.dropped_blocks if self._source is not None else 0)

    @property
    def overflows(self) -> int:
        return self._overflows_before + (self._source.overflows if self._source is not None else 0)

    def take_notices(self) -> list[SourceNotice]:
        notices, self._notices = self._notices, []
        return notices

    def start(self) -> None:
        if self._source is not None:
            return
        source = self._make_source(self.device_spec, self.sample_rate_hz)
        source.start()
        self._source = source
        self._device_name = source.name

    def read(self, timeout_s: float = 0.1) -> np.ndarray | None:
        if self._source is None and self._lost_at is None:
            raise CaptureError("the input stream is not running (call start() first)")
        if self._source is not None:
            try:
                block = self._source.read(timeout_s)
            except CaptureError as exc:
                self._lose(str(exc))
                return None
            if block is not None and self._reopened:
                self._resumed()
            return block
        wait_s = self._next_try_at - time.monotonic()
        if wait_s > 0:
            time.sleep(min(timeout_s, wait_s))
            return None
        self._try_to_reopen()
        return None

    def _lose(self, reason: str) -> None:
        was_connected = self._lost_at is None
        self._retire()
        now = time.monotonic()
        if was_connected:
            self._lost_at = now
            self._notices.append(SourceNotice(True, f"{reason}; reconnecting..."))
        self._next_try_at = now + self.retry_every_s

    def _retire(self) -> None:
        source, self._source = self._source, None
        self._reopened = False
        if source is not None:
            self._dropped_before += source.dropped_blocks
            self._overflows_before += source.overflows
            source.stop()

    def _try_to_reopen(self) -> None:
        sd = _sounddevice()
        try:
            rescan_devices()   # a device plugged back in, or a restarted server, shows only after a re-scan
            spec = self._device_name
            self._fallback_note = ""
            try:
                find_input_device(spec)
            except CaptureError:
                spec = None     # that device is gone: the system default, said so in the notice
                self._fallback_note = f"; {self._device_name!r} was not found"
            source = self._make_source(spec, self.sample_rate_hz)
            source.start()
        except (CaptureError, sd.PortAudioError):   # still gone: try again later
            self._next_try_at = time.monotonic() + self.retry_every_s
            return
        self._source = source
        self._reopened = True

    def _resumed(self) -> None:
        self._reopened = False
        lost_for_s = time.monotonic() - self._lost_at
        self._lost_at = None
        self.reconnects += 1
        self._device_name = self._source.name
        self._notices.append(SourceNotice(False, f"listening again on {self._source.name} "
                                                 f"(input was lost for {lost_for_s:.1f} s{self._fallback_note})"))

    def stop(self) -> None:
        self._retire()
        self._lost_at = None
