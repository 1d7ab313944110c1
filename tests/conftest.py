"""Shared fixtures: the committed clips in tests/data and helpers to run the CLI as a user would."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

DATA_DIR = Path(__file__).resolve().parent / "data"
CLIPS_DIR = DATA_DIR / "clips"
REPO_ROOT = Path(__file__).resolve().parent.parent
WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


@pytest.fixture(autouse=True)
def private_config_folder(tmp_path_factory, monkeypatch):
    """No test reads or writes the real user's config and data folders (actions.toml, personal models)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))


@pytest.fixture(scope="session")
def clips_dir() -> Path:
    return CLIPS_DIR


# The pipeline's tests run a frozen model committed with them (v4, shipped until 2026-12-01: another
# frontend and PCEN, so they also check that everything follows the model's own config), not the
# shipped one: retraining assets/model must not break a test about the pipeline. The few checks that
# the shipped model still does something use `shipped_model` and say so in their names.
TEST_MODEL_DIR = DATA_DIR / "model_v4"


@pytest.fixture(scope="session")
def model():
    """The tests' frozen model (loaded once: tests must not change it)."""
    from model.checkpoint import load_checkpoint
    return load_checkpoint(TEST_MODEL_DIR)


@pytest.fixture(scope="session")
def shipped_model():
    """The shipped model, assets/model (loaded once: tests must not change it)."""
    from model.checkpoint import default_model_dir, load_checkpoint
    return load_checkpoint(default_model_dir())


@pytest.fixture(scope="session")
def stream_wav(tmp_path_factory):
    """3 s: "yes" at 0.3 s, "stop" at 1.6 s over running-tap noise."""
    path = tmp_path_factory.mktemp("stream") / "two_commands.wav"
    sf.write(path, make_stream([("yes", 0.3), ("stop", 1.6)], total_s=3.0), 16000, subtype="PCM_16")
    return path


def read_clip(name: str) -> np.ndarray:
    samples, rate = sf.read(CLIPS_DIR / f"{name}.wav", dtype="float32")
    assert rate == 16000
    return samples


def run_cli(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    """Runs `speechcmd` in a fresh process, as a user's shell would."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "desktop_app.cli", *args], capture_output=True, text=True,
                          timeout=timeout_s, cwd=REPO_ROOT, env=env)


def make_stream(placements: list[tuple[str, float]], total_s: float, noise_level: float = 0.02,
                seed: int = 0) -> np.ndarray:
    """A 16 kHz recording: committed clips placed at known start times over real background noise."""
    rate = 16000
    noise, noise_rate = sf.read(DATA_DIR / "noise_running_tap.wav", dtype="float32")
    assert noise_rate == rate
    n = int(total_s * rate)
    reps = int(np.ceil(n / noise.size))
    rng = np.random.default_rng(seed)
    bed = np.tile(noise, reps)[:n]
    bed = bed / (np.abs(bed).max() + 1e-9) * noise_level * rng.uniform(0.8, 1.2)
    for name, start_s in placements:
        clip = read_clip(name)
        start = int(start_s * rate)
        bed[start:start + clip.size] += clip[: n - start]
    return bed.astype(np.float32)


TRAIN_WORDS = ("yes", "no", "stop", "go", "house")


def make_dataset(root):
    """Two 'speakers' per word for training, one for validation, one for test (copies of real clips,
    the later ones with a little gain change so they are not bit-identical)."""
    val, test = [], []
    for word in TRAIN_WORDS:
        (root / word).mkdir(parents=True)
        samples, rate = sf.read(CLIPS_DIR / f"{word}.wav", dtype="float32")
        for speaker, gain in (("aaaa0000", 1.0), ("bbbb1111", 0.8), ("cccc2222", 0.9), ("dddd3333", 1.1)):
            sf.write(root / word / f"{speaker}_nohash_0.wav", samples * gain, rate)
        val.append(f"{word}/cccc2222_nohash_0.wav")
        test.append(f"{word}/dddd3333_nohash_0.wav")
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    (root / "_background_noise_").mkdir()
    shutil.copy(DATA_DIR / "noise_running_tap.wav", root / "_background_noise_" / "tap.wav")
    return root


@pytest.fixture
def x_display():
    """A real X server (Xvfb) with xdotool: key presses are injected as on a desktop."""
    for tool in ("Xvfb", "xdotool"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt install xvfb xdotool)")
    display = ":%d" % (90 + os.getpid() % 100)
    # -noreset: Xvfb otherwise resets when its last client leaves (the readiness check), dropping whoever connects then
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", "640x480x24", "-nolisten", "tcp", "-noreset"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
    env.pop("WAYLAND_DISPLAY", None)
    env.pop("XDG_SESSION_TYPE", None)
    deadline = time.monotonic() + 10
    while subprocess.run(["xdotool", "getmouselocation"], env=env, capture_output=True).returncode != 0:
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            pytest.fail("Xvfb did not start")
        time.sleep(0.1)
    yield env
    server.terminate()
    server.wait(5)


@pytest.fixture(scope="module")
def virtual_mic(tmp_path_factory):
    """PulseAudio with a null sink: whatever is played into it is what the default input hears."""
    from audio.capture import CaptureError, list_input_devices, rescan_devices
    from live_audio import VirtualMic, VirtualMicUnavailable
    try:
        mic = VirtualMic.start(tmp_path_factory.mktemp("pulse"))
    except VirtualMicUnavailable as exc:
        pytest.skip(f"no audio server can run here: {exc}")
    # This process's PortAudio must see the server too (it reads the variable when a stream opens) and
    # must enumerate devices again now that the server is up.
    saved = os.environ.get("PULSE_RUNTIME_PATH")
    os.environ["PULSE_RUNTIME_PATH"] = mic.env["PULSE_RUNTIME_PATH"]
    try:
        rescan_devices()
        devices = list_input_devices()
    except CaptureError as exc:
        devices, reason = [], str(exc)
    else:
        reason = "PortAudio lists no input device (is the ALSA pulse plugin, libasound2-plugins, installed?)"
    try:
        if not devices:
            # The server runs, so a capture path that cannot see it is this product's failure, not a
            # missing machine feature: fail, do not skip.
            pytest.fail(f"the audio server runs, but {reason}")
        yield mic
    finally:
        mic.stop()
        if saved is None:
            os.environ.pop("PULSE_RUNTIME_PATH", None)
        else:
            os.environ["PULSE_RUNTIME_PATH"] = saved
        if devices:
            rescan_devices()


def focused_text_field(env: dict, tmp_path: Path):
    """A real Qt text field with the keyboard focus on the X server of `env` (another program, as on a
    desktop): returns the process and the file that holds what was typed into it."""
    typed = tmp_path / "typed.txt"
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", f"""
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLineEdit
app = QApplication([])
field = QLineEdit()
field.show(); field.activateWindow(); field.setFocus()
QTimer.singleShot(300, lambda: open({str(ready)!r}, "w").close())
field.textChanged.connect(lambda text: open({str(typed)!r}, "w").write(text))
QTimer.singleShot(20000, app.quit)
app.exec()
"""], env=env)
    deadline = time.monotonic() + 15
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc, typed
