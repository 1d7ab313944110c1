"""The desktop window, offscreen (QT_QPA_PLATFORM=offscreen): it builds, file audio reaches the history
through the worker thread, the slider reaches the worker, a failing device leaves a usable window."""
from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings          # noqa: E402
from PySide6.QtGui import QImage              # noqa: E402

from audio.capture import CaptureError, InputDevice

from audio.file_source import FileSource   # noqa: E402
from conftest import TEST_MODEL_DIR, make_stream, run_cli                          # noqa: E402
from desktop_app.cli import run_detection                          # noqa: E402
from desktop_app.live_session import sensitivity_to_threshold
from desktop_app.window import MainWindow  # noqa: E402
from desktop_app.worker import RecognizerWorker, start_worker      # noqa: E402

DEVICES = [InputDevice(0, "Virtual Mic", "ALSA", 1, 48000, True), InputDevice(1, "USB Mic", "ALSA", 1, 44100, False)]


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, model, settings):
    def make(**kwargs):
        kwargs.setdefault("settings", settings)
        kwargs.setdefault("device_lister", lambda rescan: list(DEVICES))
        window = MainWindow(model, **kwargs)
        qtbot.addWidget(window)   # closed (threads stopped) at teardown
        window.show()
        return window
    return make


class ScriptedSource:
    """A microphone stand-in: plays `path` fast for `blocks` blocks, then fails with `error`."""

    def __init__(self, path, error: Exception | None = None, blocks: int = 10**9, fail_on_start=False):
        self.file = FileSource(path, 16000, block_ms=20, realtime=True)
        self.error, self.blocks_left, self.fail_on_start = error, blocks, fail_on_start
        self.finished, self.dropped_blocks, self.overflows = False, 0, 0

    def start(self):
        if self.fail_on_start:
            raise self.error
        self.file.start()

    def read(self, timeout_s):
        if self.blocks_left <= 0:
            raise self.error
        self.blocks_left -= 1
        block = self.file.read(timeout_s)
        self.finished = self.file.finished and self.error is None
        return block

    def stop(self):
        self.file.stop()


def _history_labels(window):
    return [window.history_list.item(i).text().split()[3] for i in range(window.history_list.count())]


def test_window_builds_with_every_part(make_window, model):
    window = make_window()
    assert window.device_combo.count() == 1 + len(DEVICES)   # "System default" first
    assert window.device_combo.itemData(2) == "USB Mic"
    assert window.start_button.text() == "Start"
    assert list(window.bars_view.commands) == [label for label in model.labels if not label.startswith("_")]
    info = window.model_info_label.text()
    assert "yes no up down left right on off stop go" in info and "Accuracy: validation" in info
    window.redraw()   # drawing with no data yet must work
    assert not window.error_label.isVisible()


def test_file_source_detections_reach_the_history_list(qtbot, make_window, stream_wav):
    window = make_window()
    with qtbot.waitSignal(window.first_frame_drawn, timeout=5000):
        window.session.start_file_playback(stream_wav)
    assert window.session.is_running and window.start_button.text() == "Stop"
    with qtbot.waitSignal(window.view_model.history_added, timeout=5000) as first:
        pass
    assert first.args[0].label == "yes"
    with qtbot.waitSignal(window.session.run_finished, timeout=8000) as done:
        pass
    assert done.args == [True]
    assert _history_labels(window) == ["stop", "yes"]          # newest first
    assert window.last_command_label.text().startswith("stop")
    shown = window.view_model.spectrogram.ordered()
    assert shown.max() > window.view_model.log_mel_floor + 5   # speech reached the spectrogram
    assert not window.session.is_running and window.start_button.text() == "Start"


def test_the_slider_sets_the_threshold_the_worker_uses(qtbot, make_window, stream_wav):
    window = make_window()
    window.sensitivity_slider.setValue(10)
    assert window.session.threshold == pytest.approx(0.9)
    window.session.start_file_playback(stream_wav)
    assert window.session.worker.threshold == pytest.approx(0.9)       # a new run starts with the slider's value
    window.sensitivity_slider.setValue(75)                    # while running: takes effect at once
    assert window.session.worker.threshold == pytest.approx(sensitivity_to_threshold(75)) == pytest.approx(0.25)
    assert window.session.worker.recognizer.detector.threshold == pytest.approx(0.25)
    assert "0.25" in window.sensitivity_label.text()
    window.session.stop()
    assert not window.session.is_running


def test_a_failing_device_shows_an_error_and_the_app_stays_usable(qtbot, make_window, stream_wav):
    asked = []
    plan = [
        CaptureError("audio input unavailable: PortAudio library not found"),            # factory fails
        ScriptedSource(stream_wav, CaptureError("cannot open input device 'Virtual Mic': busy"), fail_on_start=True),
        ScriptedSource(stream_wav, CaptureError("input device 'Virtual Mic' stopped delivering audio"), blocks=15),
        ScriptedSource(stream_wav),                                                       # the re-chosen device
    ]

    def factory(device, sample_rate_hz):
        asked.append(device)
        step = plan.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    window = make_window(source_factory=factory)
    window.start_button.click()
    assert "PortAudio library not found" in window.error_label.text() and window.error_label.isVisible()
    assert not window.session.is_running

    with qtbot.waitSignal(window.session.run_finished, timeout=3000) as failed:
        window.start_button.click()
    assert failed.args == [False] and "busy" in window.error_label.text()
    assert window.start_button.text() == "Start" and window.device_combo.isEnabled()

    with qtbot.waitSignal(window.session.run_finished, timeout=3000) as lost:
        window.start_button.click()                            # works for 15 blocks, then the device is lost
    assert lost.args == [False] and "stopped delivering audio" in window.error_label.text()
    assert "stopped delivering audio" in window.status_label.text()

    window.device_combo.setCurrentIndex(window.device_combo.findData("USB Mic"))   # re-choose, no restart
    with qtbot.waitSignal(window.view_model.history_added, timeout=5000):
        window.start_button.click()
    assert not window.error_label.isVisible() and window.session.is_running
    window.start_button.click()                                # Stop
    assert not window.session.is_running
    assert asked == [None, None, None, "USB Mic"]


def test_device_and_sensitivity_are_remembered(qtbot, model, settings):
    first = MainWindow(model, settings=settings, device_lister=lambda rescan: list(DEVICES))
    qtbot.addWidget(first)
    first.device_combo.setCurrentIndex(first.device_combo.findData("USB Mic"))
    first.sensitivity_slider.setValue(70)
    first.close()
    second = MainWindow(model, settings=settings, device_lister=lambda rescan: list(DEVICES))
    qtbot.addWidget(second)
    assert second.selected_device() == "USB Mic"
    assert second.sensitivity_slider.value() == 70 and second.session.threshold == pytest.approx(0.3)


def test_open_file_runs_the_same_pipeline_and_draws_a_timeline(qtbot, make_window, model, stream_wav, tmp_path):
    window = make_window()
    with qtbot.waitSignal(window.analysis_finished, timeout=10000) as done:
        window.analyze_file(stream_wav)
    analysis = done.args[0]
    offline = list(run_detection(model, [stream_wav], model.detector))
    assert [(d.label, d.time_s) for d in analysis.detections] == [(d.label, d.time_s) for d in offline]
    assert [d.label for d in analysis.detections] == ["yes", "stop"]
    assert analysis.posteriors.shape == (298, len(model.labels))   # one row per 10 ms frame of 3 s
    assert len(window.timeline_view.markers.data) == 2
    assert "2 command(s)" in window.status_label.text()

    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt nonsense")
    with qtbot.waitSignal(window.analysis_finished, timeout=5000):
        window.analyze_file(broken)
    assert "broken.wav" in window.error_label.text()
    window.analyze_file(stream_wav)                            # still usable after the error
    with qtbot.waitSignal(window.analysis_finished, timeout=10000) as again:
        pass
    assert again.args[0].error is None and not window.error_label.isVisible()


def test_worker_events_equal_the_offline_detector(qtbot, model, stream_wav):
    worker = RecognizerWorker(model, FileSource(stream_wav, 16000, block_ms=333, realtime=False))
    events, batches = [], []
    worker.detected.connect(events.append)
    worker.posteriors_ready.connect(batches.append)
    with qtbot.waitSignal(worker.finished, timeout=10000):
        thread = start_worker(worker)
    assert thread.wait(2000)   # the thread ends by itself, even while this (GUI) thread blocks
    offline = list(run_detection(model, [stream_wav], model.detector))
    assert [(e.label, e.time_s) for e in events] == [(e.label, e.time_s) for e in offline]
    starts = [b.start_frame for b in batches]
    assert starts == sorted(starts) and sum(b.log_mel.shape[0] for b in batches) == 298
    assert np.all(np.isfinite(np.concatenate([b.hidden for b in batches])))


def test_gui_command_plays_a_file_and_saves_a_screenshot(tmp_path):
    wav = tmp_path / "one.wav"
    sf.write(wav, make_stream([("yes", 0.2)], total_s=1.5), 16000, subtype="PCM_16")
    png = tmp_path / "shot.png"
    done = run_cli("gui", "--model", str(TEST_MODEL_DIR), "--input-file", str(wav), "--screenshot", str(png), timeout_s=60)
    assert done.returncode == 0, done.stderr
    image = QImage(str(png))
    assert image.width() >= 800 and image.height() >= 500
    # The window drew the one command of the file, in the history and as the last command, at the
    # time the offline detector gives.
    from model.streaming import load_streaming_model
    model = load_streaming_model(TEST_MODEL_DIR)
    offline = list(run_detection(model, [wav], model.detector))
    assert [e.label for e in offline] == ["yes"]
    assert f"(history: yes at {offline[0].time_s:.2f} s; last command: yes)" in done.stderr, done.stderr
    # ...and the picture is not blank: its pixels vary (spectrogram, bars, text).
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 50


def test_frame_ring_keeps_the_latest_rows_in_order():
    from desktop_app.view_model import FrameRing
    ring = FrameRing(capacity=5, width=2, fill=-1.0)
    ring.push(np.array([[0, 0], [1, 1], [2, 2]], np.float32))
    assert ring.ordered()[:, 0].tolist() == [-1, -1, 0, 1, 2]
    ring.push(np.array([[3, 3], [4, 4], [5, 5]], np.float32))     # wraps around
    assert ring.ordered()[:, 0].tolist() == [1, 2, 3, 4, 5]
    ring.push(np.arange(14, dtype=np.float32).reshape(7, 2))        # more rows than it holds
    assert ring.ordered()[:, 0].tolist() == [4, 6, 8, 10, 12]


def test_emitting_signals_does_not_eat_references_to_true():
    """PySide6 6.12.0's emit() forgets a reference to True, and the interpreter aborts after ~10^4 emits
    (about a minute of the live app); pyproject.toml excludes that release. This guards the installed one."""
    import sys
    from PySide6.QtCore import QObject, Signal

    class Pinger(QObject):
        ping = Signal(object)

    pinger = Pinger()
    pinger.ping.connect(lambda value: None)
    before = sys.getrefcount(True)
    for _ in range(5000):
        pinger.ping.emit(1)
    assert sys.getrefcount(True) - before > -100


def test_level_covers_every_block_since_the_last_one():
    from desktop_app.worker import LevelAccumulator
    level = LevelAccumulator()
    level.add(np.full(160, 0.1, np.float32))
    level.add(np.array([0.9] + [0.1] * 159, np.float32))   # a clipping-near peak in the second block
    taken = level.take()
    assert taken.peak == pytest.approx(0.9)
    expected_rms = np.sqrt((0.01 * 319 + 0.81) / 320)
    assert taken.rms_dbfs == pytest.approx(20 * np.log10(expected_rms), abs=1e-4)
    assert level.n_samples == 0
    level.add(np.zeros(160, np.float32))
    assert level.take().rms_dbfs == -np.inf


def test_command_bars_skip_changes_too_small_to_see(qtbot):
    from desktop_app.widgets import CommandBars
    bars = CommandBars(("yes", "no"), threshold=0.5)
    qtbot.addWidget(bars)
    bars.show_values(np.array([0.2, 0.0]), 0.5)
    bars.show_values(np.array([0.201, 0.0]), 0.5)
    assert bars.bars.opts["height"].tolist() == [0.2, 0.0]
    bars.show_values(np.array([0.7, 0.0]), 0.5)
    assert bars.bars.opts["height"].tolist() == [0.7, 0.0]
    assert bars.bars.opts["brushes"][0] is bars._above
    bars.show_values(np.array([0.7, 0.0]), 0.8)    # same values, new threshold: redrawn
    assert bars.threshold_line.value() == 0.8 and bars.bars.opts["brushes"][0] is not bars._above


def test_level_meter_shows_clipping_and_holds_it(qtbot):
    from desktop_app.widgets import LevelMeter
    meter = LevelMeter()
    qtbot.addWidget(meter)
    meter.show_level(-20.0, 10.0, peak=0.5)
    assert meter.format() == "level: -20 dBFS" and not meter.clipping_shown
    meter.show_level(-6.0, 10.05, peak=1.0)          # skipped by the refresh limit, but remembered
    meter.show_level(-6.0, 10.2, peak=0.3)
    assert meter.format() == "level: -6 dBFS  CLIP" and meter.clipping_shown
    meter.show_level(-18.0, 11.5, peak=0.3)          # within the hold
    assert meter.clipping_shown
    meter.show_level(-18.0, 12.2, peak=0.3)          # 2 s after the clipped block: gone
    assert meter.format() == "level: -18 dBFS" and not meter.clipping_shown


def test_a_detection_keeps_its_audio_and_not_a_command_stores_it(qtbot, make_window, stream_wav, tmp_path,
                                                                  monkeypatch):
    """Each history row holds the 2 s it fired on: selecting it draws it, Play plays it, "Not a command"
    writes it where the next adaptation reads it."""
    played = []
    monkeypatch.setattr("desktop_app.history_panel.play_samples", lambda samples, rate: played.append((samples, rate)))
    window = make_window(models_dir=tmp_path / "data" / "models")
    with qtbot.waitSignal(window.session.run_finished, timeout=10000):
        window.session.start_file_playback(stream_wav)
    panel = window.history_panel
    assert _history_labels(window) == ["stop", "yes"]
    panel.list.setCurrentRow(1)                                  # "yes", said at 0.3 s
    event, clip = panel.selected()
    assert event.label == "yes" and clip.dtype == np.int16 and clip.size == 32000
    assert panel.image.image is not None and panel.reject_button.isEnabled()
    assert panel.play_selected() and played[0][1] == 16000 and played[0][0].size == 32000
    # The clip is the stream's audio that ends where the event fired (to within a recognizer call).
    stream, _ = sf.read(stream_wav, dtype="float32")
    end = int(round(event.time_s * 16000))
    best = max(range(max(4000, end - 2000), end + 2000, 40),
               key=lambda e: float(np.dot(stream[e - 4000:e], clip[-4000:].astype(np.float32))))
    assert abs(best - end) <= 1600
    path = panel.reject_selected()
    assert path.parent == tmp_path / "data" / "not_commands" and path.name.endswith("_yes.wav")
    kept, rate = sf.read(path, dtype="int16")
    assert rate == 16000 and np.array_equal(kept, clip)
    assert panel.list.item(1).text().endswith("(not a command)") and not panel.reject_button.isEnabled()
    assert "kept as not a command (1 so far)" in window.status_label.text()
