"""audio/capture.py without hardware: the file source's pacing, and the microphone source driven by a
fake sounddevice module (the same callback protocol PortAudio uses), for errors no real device gives
on demand. The real device path is tested through PulseAudio in test_live_e2e.py."""
from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

import audio.capture as capture
from audio.capture import CaptureError, MicrophoneSource, find_input_device
from audio.file_source import FileSource
from audio.io import AudioReadError, read_audio
from conftest import CLIPS_DIR, DATA_DIR

RATE_HZ = 16000


# --------------------------------------------------------------------------- file source
def _drain(source, timeout_s=0.1, limit_s=10.0):
    blocks, deadline = [], time.monotonic() + limit_s
    while not source.finished and time.monotonic() < deadline:
        block = source.read(timeout_s)
        if block is not None:
            blocks.append(block)
    return blocks


def test_file_source_plays_at_real_time_pace_and_delivers_every_sample():
    path = CLIPS_DIR / "yes.wav"
    source = FileSource(path, RATE_HZ, block_ms=20)
    started = time.monotonic()
    source.start()
    blocks = _drain(source)
    elapsed_s = time.monotonic() - started
    assert source.finished and source.read(0.01) is None
    source.stop()
    expected = read_audio(path, RATE_HZ)
    np.testing.assert_allclose(np.concatenate(blocks), expected, atol=1e-6)
    assert 0.95 <= elapsed_s <= 1.6, elapsed_s        # a 1 s clip takes about 1 s
    assert max(b.size for b in blocks) <= 0.02 * RATE_HZ + 1


def test_file_source_paces_blocks_like_a_microphone():
    """Half-way through the wall-clock time, about half of the clip has been served, not all of it."""
    source = FileSource(CLIPS_DIR / "no.wav", RATE_HZ, block_ms=20)
    source.start()
    served, started = 0, time.monotonic()
    while time.monotonic() - started < 0.5:
        block = source.read(0.05)
        served += 0 if block is None else block.size
    source.stop()
    assert 0.4 * RATE_HZ <= served <= 0.6 * RATE_HZ


def test_file_source_read_returns_everything_due_like_a_microphone():
    """A reader that comes back late gets all the audio "captured" meanwhile in one piece."""
    source = FileSource(CLIPS_DIR / "no.wav", RATE_HZ, block_ms=20)
    source.start()
    time.sleep(0.3)
    samples = source.read(0.0)
    source.stop()
    assert 0.28 * RATE_HZ <= samples.size <= 0.36 * RATE_HZ, samples.size


def test_pacer_keeps_its_rhythm_and_does_not_burst_after_a_delay():
    pacer = capture.Pacer(every_ms=50)
    started = time.monotonic()
    for _ in range(5):
        pacer.wait()
    assert 0.19 <= time.monotonic() - started <= 0.3     # the first wait returns at once, then 4 x 50 ms
    time.sleep(0.2)                                      # the loop fell behind by several ticks
    pacer.wait()
    late = time.monotonic()
    pacer.wait()
    assert time.monotonic() - late >= 0.045              # one interval after, not a burst of catch-ups


def test_file_source_fast_mode_resamples_other_rates():
    source = FileSource(DATA_DIR / "formats" / "stop_44k_stereo.wav", RATE_HZ, block_ms=1000, realtime=False)
    started = time.monotonic()
    source.start()
    samples = np.concatenate(_drain(source))
    assert time.monotonic() - started < 0.5
    assert abs(samples.size - RATE_HZ) <= 2
    assert samples.ndim == 1 and samples.dtype == np.float32


def test_file_source_reports_a_bad_file_at_start(tmp_path):
    with pytest.raises(AudioReadError, match="not found"):
        FileSource(tmp_path / "missing.wav", RATE_HZ).start()
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(AudioReadError):
        FileSource(bad, RATE_HZ).start()


# --------------------------------------------------------------------------- a fake PortAudio
class FakePortAudioError(Exception):
    pass


class FakeStatus:
    def __init__(self, input_overflow=False):
        self.input_overflow = input_overflow

    def __bool__(self):
        return self.input_overflow


class FakeStream:
    """Calls `callback` from its own thread with a 440 Hz tone, like PortAudio's audio thread."""

    def __init__(self, fake, device, channels, samplerate, blocksize, dtype, latency, callback, finished_callback):
        self.fake, self.rate, self.blocksize, self.device = fake, samplerate, blocksize, device
        self.callback, self.finished_callback = callback, finished_callback
        self.active = False
        self.latency = 0.01
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        fake.streams.append(self)

    def start(self):
        if self.fake.fail_open:
            raise FakePortAudioError("Device unavailable [PaErrorCode -9985]")
        self.active = True
        self._thread.start()

    def _run(self):
        position = 0
        for _ in range(self.fake.blocks_before_loss if self.fake.blocks_before_loss is not None else 10**9):
            if self._halt.is_set():
                return
            t = (position + np.arange(self.blocksize)) / self.rate
            block = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[:, None]
            self.callback(block, self.blocksize, None, FakeStatus(self.fake.overflow))
            position += self.blocksize
            time.sleep(self.blocksize / self.rate / self.fake.speedup)
        if self.fake.lose_silently:
            return            # a stalled device: still "active", but no more callbacks
        self.active = False   # PortAudio ends the stream when the device goes away
        self.finished_callback()

    def abort(self):
        self._halt.set()
        self.active = False

    def close(self):
        self._halt.set()


class FakeSounddevice:
    PortAudioError = FakePortAudioError

    def __init__(self, rate_hz=48000):
        self.rate_hz = rate_hz
        self.fail_open = False
        self.blocks_before_loss = None
        self.lose_silently = False
        self.overflow = False
        self.speedup = 1.0
        self.streams = []
        self.default = type("Default", (), {"device": [1, 1]})()
        self.devices = [
            {"index": 0, "name": "HDMI output", "hostapi": 0, "max_input_channels": 0, "default_samplerate": 48000.0},
            {"index": 1, "name": "USB Microphone", "hostapi": 0, "max_input_channels": 1,
             "default_samplerate": float(rate_hz)},
            {"index": 2, "name": "Webcam Microphone", "hostapi": 0, "max_input_channels": 2,
             "default_samplerate": 44100.0},
        ]

    def query_devices(self, device=None, kind=None):
        return self.devices

    def query_hostapis(self):
        return ({"name": "ALSA"},)

    def InputStream(self, **kwargs):
        return FakeStream(self, **kwargs)


@pytest.fixture
def fake_sd(monkeypatch):
    fake = FakeSounddevice()
    monkeypatch.setattr(capture, "_sounddevice", lambda: fake)
    return fake


def _read_for(source, seconds):
    blocks, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        block = source.read(0.05)
        if block is not None:
            blocks.append(block)
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


# --------------------------------------------------------------------------- microphone source
def test_devices_are_listed_and_found_by_index_or_name(fake_sd):
    devices = capture.list_input_devices()
    assert [d.name for d in devices] == ["USB Microphone", "Webcam Microphone"]   # outputs left out
    assert devices[0].is_default and devices[0].default_rate_hz == 48000
    assert find_input_device(None).name == "USB Microphone"
    assert find_input_device("2").name == "Webcam Microphone"
    assert find_input_device("webcam").name == "Webcam Microphone"
    with pytest.raises(CaptureError, match="ambiguous"):
        find_input_device("microphone")
    with pytest.raises(CaptureError, match="no input device matches 'nope'.*USB Microphone"):
        find_input_device("nope")
    with pytest.raises(CaptureError, match="no input device with index 7"):
        find_input_device(7)


def test_no_input_device_is_an_error(fake_sd):
    fake_sd.devices = fake_sd.devices[:1]
    with pytest.raises(CaptureError, match="no audio input device"):
        MicrophoneSource(None, RATE_HZ).start()


def test_missing_portaudio_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)   # import now fails, as without libportaudio
    with pytest.raises(CaptureError, match="audio input unavailable"):
        capture.list_input_devices()


def test_device_rate_is_resampled_to_the_model_rate(fake_sd):
    fake_sd.speedup = 4.0   # 1 s of audio in 0.25 s
    source = MicrophoneSource("USB", RATE_HZ)
    source.start()
    blocks, deadline = [], time.monotonic() + 5.0
    while sum(b.size for b in blocks) < 1.2 * RATE_HZ and time.monotonic() < deadline:
        block = source.read(0.05)
        if block is not None:
            blocks.append(block)
    source.stop()
    samples = np.concatenate(blocks)
    assert source.device_rate_hz == 48000
    assert samples.size >= 1.2 * RATE_HZ
    spectrum = np.abs(np.fft.rfft(samples[2000:2000 + RATE_HZ // 2]))
    peak_hz = np.argmax(spectrum) * RATE_HZ / (RATE_HZ // 2)
    assert abs(peak_hz - 440.0) < 5.0     # the tone keeps its pitch: the rate conversion is right
    assert source.dropped_blocks == 0 and fake_sd.streams[-1].active is False   # stop() ended the stream


def test_callback_never_blocks_and_counts_drops_and_overflows(fake_sd):
    source = MicrophoneSource(None, RATE_HZ, block_ms=20, queue_ms=100)   # room for 5 blocks
    block = np.zeros((960, 1), np.float32)
    started = time.monotonic()
    for _ in range(20):   # nobody reads: the queue fills, then blocks are dropped, not waited on
        source._callback(block, 960, None, FakeStatus(input_overflow=True))
    assert time.monotonic() - started < 0.1
    assert source.dropped_blocks == 15
    assert source.overflows == 20


def test_open_failure_is_reported_to_the_caller(fake_sd):
    fake_sd.fail_open = True
    with pytest.raises(CaptureError, match="cannot open input device 'USB Microphone'.*Device unavailable"):
        MicrophoneSource(None, RATE_HZ).start()


def test_device_lost_mid_stream_reaches_the_reader(fake_sd):
    fake_sd.blocks_before_loss = 10
    source = MicrophoneSource(None, RATE_HZ)
    source.start()
    with pytest.raises(CaptureError, match="stopped delivering audio"):
        _read_for(source, 3.0)
    source.stop()
    source.stop()   # idempotent, even after a loss


def test_a_stalled_device_is_reported(fake_sd):
    fake_sd.blocks_before_loss = 3
    fake_sd.lose_silently = True
    source = MicrophoneSource(None, RATE_HZ, stall_s=0.3)
    source.start()
    with pytest.raises(CaptureError, match="audio stopped for"):
        _read_for(source, 3.0)
    source.stop()


def test_reading_a_stopped_source_is_an_error(fake_sd):
    with pytest.raises(CaptureError, match="not running"):
        MicrophoneSource(None, RATE_HZ).read(0.01)


def test_the_cli_loads_neither_qt_nor_portaudio_until_a_live_command_needs_them():
    import subprocess
    from conftest import REPO_ROOT
    code = ("import sys; from desktop_app.cli import build_parser; build_parser().parse_args(['devices']); "
            "import audio.capture; print('PySide6' in sys.modules, 'sounddevice' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "False"], done.stderr


def test_a_stream_stuck_on_a_dead_audio_server_does_not_hang_stop_rescan_or_exit(fake_sd, monkeypatch):
    """PortAudio's abort can block for good once the audio server died under the stream."""
    monkeypatch.setattr(capture, "STREAM_CLOSE_TIMEOUT_S", 0.2)
    monkeypatch.setattr(capture, "_stuck_streams", [])
    unregistered = []
    monkeypatch.setattr(capture.atexit, "unregister", unregistered.append)
    fake_sd.terminated = 0
    fake_sd._terminate = lambda: setattr(fake_sd, "terminated", fake_sd.terminated + 1)
    fake_sd._initialize = lambda: None
    fake_sd._exit_handler = lambda: None
    capture.rescan_devices()
    assert fake_sd.terminated == 1                 # a normal re-scan restarts PortAudio
    source = MicrophoneSource(None, RATE_HZ)
    source.start()
    stuck = threading.Event()
    monkeypatch.setattr(source._stream, "abort", lambda: stuck.wait())     # never returns on its own
    started = time.monotonic()
    source.stop()
    assert time.monotonic() - started < 1.0
    capture.rescan_devices()
    assert fake_sd.terminated == 1                 # terminating PortAudio now would wait forever
    assert unregistered == [fake_sd._exit_handler]   # ... and so would sounddevice's exit handler
    stuck.set()


# --------------------------------------------------------------------------- reconnecting microphone
def _rescannable(fake_sd, monkeypatch):
    monkeypatch.setattr(capture, "_stuck_streams", [])
    fake_sd.rescans = 0
    fake_sd._terminate = lambda: setattr(fake_sd, "rescans", fake_sd.rescans + 1)
    fake_sd._initialize = lambda: None


def test_a_lost_device_is_reopened_by_name_and_both_changes_are_noticed(fake_sd, monkeypatch):
    _rescannable(fake_sd, monkeypatch)
    fake_sd.blocks_before_loss = 10                       # the first stream dies after 10 blocks (0.2 s)
    source = capture.ReconnectingMicrophone("Webcam", RATE_HZ, retry_every_s=0.1)
    source.start()
    assert source.name == "Webcam Microphone"
    fake_sd.blocks_before_loss = None                     # the streams opened later keep going
    audio = _read_for(source, 1.0)                        # no exception: the loss is a notice
    notices = source.take_notices()
    assert [n.lost for n in notices] == [True, False], notices
    assert "stopped delivering audio" in notices[0].message and "reconnecting" in notices[0].message
    assert notices[1].message.startswith("listening again on Webcam Microphone (input was lost for")
    assert source.connected and source.reconnects == 1 and fake_sd.rescans >= 1
    assert audio.size > 0.6 * RATE_HZ                     # most of the second is there: the gap was short
    assert [s.device for s in fake_sd.streams] == [2, 2]  # the same device again
    source.stop()


def test_reconnecting_waits_while_the_device_cannot_be_opened_and_falls_back_to_the_default(fake_sd, monkeypatch):
    _rescannable(fake_sd, monkeypatch)
    fake_sd.blocks_before_loss = 5
    source = capture.ReconnectingMicrophone("Webcam", RATE_HZ, retry_every_s=0.1)
    source.start()
    fake_sd.fail_open = True                              # gone for now: opening fails
    fake_sd.devices = [d for d in fake_sd.devices if d["name"] != "Webcam Microphone"]
    _read_for(source, 0.6)
    assert not source.connected
    assert [n.lost for n in source.take_notices()] == [True]   # said once, not at every failed attempt
    fake_sd.fail_open, fake_sd.blocks_before_loss = False, None
    assert _read_for(source, 0.8).size > 0
    notice = source.take_notices()[-1]
    assert not notice.lost and notice.message.startswith("listening again on USB Microphone")
    assert "'Webcam Microphone' was not found" in notice.message
    source.stop()


def test_the_first_start_of_a_reconnecting_microphone_still_fails_at_once(fake_sd):
    with pytest.raises(CaptureError, match="no input device matches 'Nope'"):
        capture.ReconnectingMicrophone("Nope", RATE_HZ).start()
