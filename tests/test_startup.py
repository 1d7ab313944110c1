"""Start-up without waiting for torch: the window and the live spectrogram come first, the network
loads in a background thread, and the audio heard meanwhile is recognized once it is ready."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from audio.file_source import FileSource                               # noqa: E402
from audio.config import FrontendConfig                            # noqa: E402
from audio.features import LogMel                                  # noqa: E402
from audio.mel import NumpyLogMel, NumpyStreamingLogMel            # noqa: E402
from conftest import REPO_ROOT, TEST_MODEL_DIR, make_stream, run_cli             # noqa: E402
from desktop_app.cli import run_detection                          # noqa: E402
from desktop_app.model_loader import BackgroundModel               # noqa: E402
from desktop_app.window import MainWindow                          # noqa: E402
from desktop_app.worker import RecognizerWorker, start_worker      # noqa: E402
from model.checkpoint import default_model_dir                    # noqa: E402
from model.model_config import ModelLoadError                      # noqa: E402


@pytest.fixture
def corrupt_model(tmp_path):
    folder = tmp_path / "corrupt"
    shutil.copytree(default_model_dir(), folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    return folder


def test_numpy_log_mel_matches_the_torch_one_and_streams(stream_wav):
    samples, _ = sf.read(stream_wav, dtype="float32")
    cfg = FrontendConfig.legacy_v4()
    reference = LogMel(cfg)(samples).numpy()
    frames = NumpyLogMel(cfg)(samples)
    assert frames.shape == reference.shape == (298, cfg.n_mels)
    np.testing.assert_allclose(frames, reference, atol=2e-3)
    streaming = NumpyStreamingLogMel(cfg)
    chunks = [streaming.process(samples[i:i + 333]) for i in range(0, samples.size, 333)]
    np.testing.assert_allclose(np.concatenate(chunks), frames, atol=1e-5)


def test_worker_recognizes_audio_heard_while_the_model_was_loading(qtbot, model, stream_wav):
    loading = BackgroundModel.from_folder(TEST_MODEL_DIR)     # not started: the network does not exist yet
    worker = RecognizerWorker(loading, FileSource(stream_wav, 16000, block_ms=20, realtime=True))
    events, batches, caught_up = [], [], []
    worker.detected.connect(events.append)
    worker.posteriors_ready.connect(batches.append)
    worker.recognizer_started.connect(caught_up.append)
    thread = start_worker(worker)
    qtbot.waitUntil(lambda: sum(b.log_mel.shape[0] for b in batches) >= 120, timeout=5000)
    assert worker.recognizer is None and not events
    early = list(batches)
    assert all(not b.posteriors.any() and not b.hidden.any() for b in early)   # nothing recognized yet
    n_early = sum(b.log_mel.shape[0] for b in early)
    samples, _ = sf.read(stream_wav, dtype="float32")
    shown = np.concatenate([b.log_mel for b in early])
    np.testing.assert_allclose(shown, LogMel(loading.spec.frontend)(samples).numpy()[:n_early], atol=2e-3)

    with qtbot.waitSignal(worker.finished, timeout=15000):
        loading.start()
    assert thread.wait(2000)
    assert caught_up and caught_up[0] >= 1.2            # it ran over the audio heard while loading
    offline = list(run_detection(model, [stream_wav], model.detector))
    assert [e.label for e in offline] == ["yes", "stop"]
    assert [(e.label, e.time_s) for e in events] == [(e.label, e.time_s) for e in offline]
    # Every frame drawn once, in order: the catch-up does not repeat the frames already drawn.
    starts = [b.start_frame for b in batches]
    assert starts == list(np.cumsum([0] + [b.log_mel.shape[0] for b in batches[:-1]]))
    assert sum(b.log_mel.shape[0] for b in batches) == 298
    assert any(b.posteriors.any() for b in batches[len(early):])


WINDOW_WITHOUT_TORCH = r"""
import json, sys
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
from desktop_app.model_loader import BackgroundModel
from desktop_app.window import MainWindow
from model.model_config import default_model_dir
BackgroundModel.start = lambda self: None     # keep the network unloaded: what the window shows before it
window = MainWindow(BackgroundModel.from_folder(default_model_dir()),
                    settings=QSettings(sys.argv[2], QSettings.Format.IniFormat))
window.show()
window.session.start_file_playback(sys.argv[1])
vm = window.view_model
seen = {}
def check():
    if vm.frames_seen >= 80 and not seen:
        spectrogram = vm.spectrogram.ordered()
        seen.update(torch_imported="torch" in sys.modules, frames=vm.frames_seen,
                    speech_db_above_floor=float(spectrogram.max() - vm.log_mel_floor),
                    status=window.status_label.text())
        app.quit()
QTimer.singleShot(10000, app.quit)
poll = QTimer()
poll.timeout.connect(check)
poll.start(20)
app.exec()
print(json.dumps(seen))
window.shutdown()
"""


def test_window_and_live_spectrogram_need_no_torch(tmp_path):
    wav = tmp_path / "yes.wav"
    sf.write(wav, make_stream([("yes", 0.2)], total_s=1.5), 16000, subtype="PCM_16")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, "-c", WINDOW_WITHOUT_TORCH, str(wav), str(tmp_path / "s.ini")],
                          capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["frames"] >= 80 and result["speech_db_above_floor"] > 5
    assert "loading the recognizer" in result["status"]
    assert result["torch_imported"] is False


def test_a_model_that_fails_to_load_in_the_background_is_reported(qtbot, corrupt_model, stream_wav, tmp_path):
    loading = BackgroundModel.from_folder(corrupt_model)     # config.json is fine; the weights are not
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        loading.wait(30)
    from PySide6.QtCore import QSettings
    window = MainWindow(BackgroundModel.from_folder(corrupt_model),
                        settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                        device_lister=lambda rescan: [])
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(window.error_label.isVisible, timeout=30000)
    assert "could not be loaded" in window.error_label.text()
    with qtbot.waitSignal(window.session.run_finished, timeout=15000) as finished:
        window.session.start_file_playback(stream_wav)
    assert finished.args == [False] and "could not be loaded" in window.error_label.text()

    png = tmp_path / "shot.png"
    done = run_cli("gui", "--model", str(corrupt_model), "--input-file", str(stream_wav), "--screenshot", str(png),
                   timeout_s=60)
    assert done.returncode == 1
    assert "could not be loaded" in done.stderr and "Traceback" not in done.stderr


class NeverLoads(BackgroundModel):
    """A loader stuck for good (a hung disk, a wedged import): the worker must still stop when asked."""

    def start(self) -> None:
        self._started = True


def test_a_stuck_model_load_does_not_hold_a_stopped_file_analysis(qtbot, stream_wav):
    import time
    stuck = NeverLoads.from_folder(default_model_dir())
    worker = RecognizerWorker(stuck, FileSource(stream_wav, 16000, block_ms=1000, realtime=False))
    thread = start_worker(worker)
    time.sleep(0.3)
    with qtbot.waitSignal(worker.finished, timeout=2000):
        worker.stop()
    assert thread.wait(1000)


def test_audio_kept_for_a_model_that_never_loads_is_capped(qtbot, stream_wav, monkeypatch):
    import desktop_app.worker as worker_module
    monkeypatch.setattr(worker_module, "MAX_PENDING_S", 0.5)
    stuck = NeverLoads.from_folder(default_model_dir())
    worker = RecognizerWorker(stuck, FileSource(stream_wav, 16000, block_ms=20, realtime=True))
    errors = []
    worker.error_occurred.connect(errors.append)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        thread = start_worker(worker)
    assert thread.wait(1000)
    assert errors and "did not load within 0.5 s" in errors[0]
    assert worker._pending_samples <= 0.6 * 16000


def test_the_speechcmd_entry_point_runs_numpy_on_one_blas_thread():
    """OpenBLAS's spinning worker threads cost the live path 7-8% of a core (docs/LIVE.md): the
    command sets one thread before numpy loads, unless the user asked for more."""
    probe = ("import desktop_app.cli, os, numpy as np; a = np.ones((256, 256), np.float32); a @ a; "
             "print(len(os.listdir('/proc/self/task')))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    counts = []
    for extra in ({}, {"OPENBLAS_NUM_THREADS": "2"}):
        done = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, env={**env, **extra},
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        counts.append(int(done.stdout))
    assert counts[0] == 1                  # no BLAS worker threads by default
    if (os.cpu_count() or 1) >= 2:         # OpenBLAS uses no more threads than cores
        assert counts[1] == 2              # the user's own setting wins
