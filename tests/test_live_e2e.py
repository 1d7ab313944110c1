"""End to end through a real audio server: PulseAudio with a null sink as a virtual microphone.

A generated recording with known command times is played into the sink while `speechcmd listen --json`
records from the default input (the sink's monitor), through PortAudio, the capture thread, the
resampler (the ALSA device runs at 44.1 kHz) and the streaming recognizer. Skipped, with the reason,
only where no PulseAudio server can run.
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from audio.capture import CaptureError, MicrophoneSource, list_input_devices, rescan_devices
from conftest import REPO_ROOT, TEST_MODEL_DIR, make_stream
from desktop_app.cli import run_detection
from live_audio import VirtualMic

RATE_HZ = 16000
TOLERANCE_S = 0.5


def _speechcmd(mic, *args):
    return subprocess.Popen([sys.executable, "-m", "desktop_app.cli", *args], cwd=REPO_ROOT, env=mic.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_line(stream, timeout_s):
    ready, _, _ = select.select([stream], [], [], timeout_s)
    return stream.readline() if ready else ""


def test_devices_lists_the_virtual_microphone(virtual_mic):
    done = subprocess.run([sys.executable, "-m", "desktop_app.cli", "devices"], cwd=REPO_ROOT, env=virtual_mic.env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "(default)" in done.stdout


def test_listen_reports_the_played_commands_at_the_right_times(virtual_mic, model, tmp_path):
    placements = [("yes", 0.6), ("stop", 2.4), ("down", 4.2)]
    wav = tmp_path / "commands.wav"
    sf.write(wav, make_stream(placements, total_s=5.6, seed=3), RATE_HZ, subtype="PCM_16")
    reference = list(run_detection(model, [wav], model.detector))   # the same recording, read from disk
    assert [e.label for e in reference] == [name for name, _ in placements]

    listen = _speechcmd(virtual_mic, "listen", "--json", "--seconds", "8", "--model", str(model.path))
    try:
        line = _wait_for_line(listen.stderr, 30)
        assert "listening on" in line, line
        ready_at = time.monotonic()          # stream time ~0: the first block has just arrived
        player = virtual_mic.play(wav)
        played_at = time.monotonic()
        out, err = listen.communicate(timeout=40)
        assert player.wait(10) == 0, player.stderr.read()
    finally:
        listen.kill()
    assert listen.returncode == 0, err
    events = [json.loads(row) for row in out.splitlines() if row.strip()]
    assert [e["label"] for e in events] == [e.label for e in reference], (out, err)
    offset_s = played_at - ready_at
    for live, offline in zip(events, reference):
        assert set(live) == {"time", "label", "score"}
        assert abs(live["time"] - offset_s - offline.time_s) <= TOLERANCE_S, (live, offline, offset_s)
        # The live path (44.1 kHz device, resampled, 20 ms blocks) scores the word as the offline run does.
        assert abs(live["score"] - offline.score) <= 0.15, (live, offline)


def test_microphone_source_hears_what_is_played(virtual_mic, tmp_path):
    tone = (0.3 * np.sin(2 * np.pi * 1000.0 * np.arange(int(1.0 * RATE_HZ)) / RATE_HZ)).astype(np.float32)
    wav = tmp_path / "tone.wav"
    sf.write(wav, tone, RATE_HZ, subtype="PCM_16")
    assert any(d.is_default for d in list_input_devices())
    source = MicrophoneSource(None, RATE_HZ)
    source.start()
    try:
        assert source.read(3.0) is not None
        player = virtual_mic.play(wav)
        blocks, deadline = [], time.monotonic() + 1.8
        while time.monotonic() < deadline:
            block = source.read(0.1)
            if block is not None:
                blocks.append(block)
        player.wait(5)
    finally:
        source.stop()
    samples = np.concatenate(blocks)
    assert 1.5 * RATE_HZ <= samples.size <= 2.1 * RATE_HZ   # ~1.8 s of wall time, no samples lost
    loud = samples[np.abs(samples) > 0.1]
    assert loud.size > 0.5 * RATE_HZ                     # the tone came through
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * RATE_HZ / samples.size - 1000.0) < 10.0
    assert source.dropped_blocks == 0


def test_a_lost_audio_server_is_reported_and_listen_fails_cleanly(tmp_path, virtual_mic):
    other = VirtualMic.start(tmp_path / "pulse2")
    env = os.environ["PULSE_RUNTIME_PATH"]
    os.environ["PULSE_RUNTIME_PATH"] = other.env["PULSE_RUNTIME_PATH"]
    source = MicrophoneSource(None, RATE_HZ)
    try:
        source.start()
        assert source.read(3.0) is not None
        other.stop()                                     # the "device" disappears mid-stream
        started = time.monotonic()
        with pytest.raises(CaptureError, match="stopped delivering audio|no audio|audio stopped"):
            while time.monotonic() - started < 10:
                source.read(0.1)
        assert time.monotonic() - started < 6
    finally:
        source.stop()
        other.stop()
        os.environ["PULSE_RUNTIME_PATH"] = env

    done = subprocess.run([sys.executable, "-m", "desktop_app.cli", "listen", "--device", "no-such-mic"],
                          cwd=REPO_ROOT, env=virtual_mic.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("speechcmd: no input device matches 'no-such-mic'"), done.stderr
    assert "Traceback" not in done.stderr


def test_listen_survives_an_audio_server_restart_and_hears_commands_after_it(tmp_path, virtual_mic):
    """The server dies mid-stream: one clean line (no ALSA noise from C), then listening resumes on its
    own within 5 s of the server being back, and a command played afterwards is found and fires its
    action, in the same process (model state and history kept)."""
    wav = tmp_path / "stop.wav"
    sf.write(wav, make_stream([("stop", 0.5)], total_s=2.0, seed=5), RATE_HZ, subtype="PCM_16")
    marker = tmp_path / "fired.txt"
    actions = tmp_path / "actions.toml"
    actions.write_text(f'[actions.stop]\nrun = ["{sys.executable}", "-c", '
                       f'"import sys; open(sys.argv[1], \'a\').write(sys.argv[2])", "{marker}", "{{label}}"]\n')
    runtime = tmp_path / "pulse3"
    other = VirtualMic.start(runtime)
    listen = subprocess.Popen([sys.executable, "-m", "desktop_app.cli", "listen", "--json", "--seconds", "40",
                               "--actions", str(actions)],
                              cwd=REPO_ROOT, env=other.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [_wait_for_line(listen.stderr, 30) for _ in range(2)]
        assert any("listening on" in line for line in lines), lines
        other.stop()                                   # the audio server goes away mid-stream
        lost = _wait_for_line(listen.stderr, 10)
        assert lost.startswith("speechcmd: ") and "reconnecting" in lost, lost
        time.sleep(1.0)
        other = VirtualMic.start(runtime)              # ... and comes back
        back_at = time.monotonic()
        resumed = _wait_for_line(listen.stderr, 15)
        resumed_after_s = time.monotonic() - back_at
        assert resumed.startswith("listening again on"), resumed
        assert resumed_after_s <= 5.0, resumed_after_s
        print(f"listen resumed {resumed_after_s:.2f} s after the server was back")
        player = other.play(wav)
        assert player.wait(10) == 0
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        listen.terminate()
        out, err = listen.communicate(timeout=30)
    finally:
        listen.kill()
        other.stop()
    assert [json.loads(row)["label"] for row in out.splitlines() if row.strip()] == ["stop"], (out, err)
    assert marker.read_text() == "stop"
    assert "ALSA" not in err and "Traceback" not in err and "Expression" not in err, err


def test_the_window_says_the_input_is_lost_and_resumes_by_itself(qtbot, model, tmp_path, virtual_mic):
    """The real window on a real audio server that is stopped and started again: the error bar says
    so, listening resumes within 5 s of the server being back (same run: history kept), and a command
    played afterwards reaches the history."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from desktop_app.window import MainWindow

    wav = tmp_path / "stop.wav"
    sf.write(wav, make_stream([("stop", 0.5)], total_s=2.0, seed=5), RATE_HZ, subtype="PCM_16")
    runtime = tmp_path / "pulse4"
    other = VirtualMic.start(runtime)
    saved = os.environ["PULSE_RUNTIME_PATH"]
    os.environ["PULSE_RUNTIME_PATH"] = other.env["PULSE_RUNTIME_PATH"]
    window = None
    try:
        rescan_devices()
        window = MainWindow(model, settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                            models_dir=tmp_path / "models")
        qtbot.addWidget(window)
        window.show()
        window.device_combo.setCurrentIndex(0)          # the system default: the virtual microphone
        window.session.start_live()
        qtbot.waitUntil(lambda: window.view_model.frames_seen > 50, timeout=20000)
        run = window.session.worker
        other.stop()
        qtbot.waitUntil(lambda: window.error_label.isVisible(), timeout=10000)
        assert "reconnecting" in window.error_label.text()
        assert window.session.is_running and window.session.worker is run   # the run goes on, waiting for the input
        time.sleep(1.0)
        other = VirtualMic.start(runtime)
        back_at = time.monotonic()
        qtbot.waitUntil(lambda: window.status_label.text().startswith("listening again"), timeout=15000)
        assert time.monotonic() - back_at <= 5.0
        assert not window.error_label.isVisible() and window.session.worker is run
        assert other.play(wav).wait(10) == 0
        qtbot.waitUntil(lambda: window.history_list.count() >= 1, timeout=10000)
        assert "stop" in window.history_list.item(0).text()
    finally:
        if window is not None:
            window.shutdown()
        other.stop()
        os.environ["PULSE_RUNTIME_PATH"] = saved
        rescan_devices()


def test_personalize_records_takes_from_the_microphone_and_adapts(virtual_mic, shipped_model, qtbot, tmp_path):
    """The Personalize dialog through the real capture path: each take opens the default input (the
    virtual microphone), counts down, and keeps what is said after "speak now" (here one speaker's
    recorded takes, played into the microphone then). Every word must land whole inside its take (as
    much sound as the file itself has), and the takes must adapt a model the window switches to (the
    shipped one: the enrollment base needs its replay bank)."""
    model = shipped_model
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings

    from conftest import DATA_DIR
    from desktop_app.personalize import PersonalizeDialog
    from desktop_app.window import MainWindow
    from model.takes import EnrollConfig, check_take

    takes = DATA_DIR / "enroll_jackson"
    cfg = EnrollConfig(steps=40, personal_steps=40)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(model, settings=settings, models_dir=tmp_path / "data" / "models")
    qtbot.addWidget(window)
    window.device_combo.setCurrentIndex(0)   # the system default input
    window.show()
    # 2.5 s kept per take (1.5 s in the app): a word under 1 s stays whole on a busy machine
    dialog = PersonalizeDialog(window, parent=window, countdown_s=0.3, take_s=2.5, enroll_config=cfg)
    dialog.keep_going.setChecked(False)      # each take is started here, in time with its file
    dialog.show()
    dialog.choose(new_words="zero, one", takes=2, talk=False, name="mic")
    assert dialog.begin_recording()
    for word, slot in (("zero", 0), ("zero", 1), ("one", 0), ("one", 1)):
        assert dialog.next_missing() == (word, slot)
        assert dialog.record_next(), dialog.record_status.text()
        recording = dialog._recording
        qtbot.waitUntil(lambda: recording.state in ("recording", "failed"), timeout=15000)
        assert recording.state == "recording", recording.error
        assert virtual_mic.play(takes / f"{word}_{slot}.wav").wait(10) == 0
        qtbot.waitUntil(lambda: dialog._recording is None, timeout=15000)
        take = dialog.takes[word][slot]
        assert take is not None and take["problem"] is None, take and take["problem"]
        played = check_take(word, takes / f"{word}_{slot}.wav", cfg, model.frontend.sample_rate_hz,
                            model.frontend.clip_samples)
        assert abs(take["sound_s"] - played.sound_s) <= 0.1, (take["sound_s"], played.sound_s)
    assert dialog.adapt_button.isEnabled()
    with qtbot.waitSignal(dialog.model_ready, timeout=180000) as ready:
        assert dialog.start_adaptation()
    assert ready.args == [str(tmp_path / "data" / "models" / "mic")]
    assert window.spec.labels[-2:] == ("one", "zero")


def test_listen_pauses_with_the_microphone_closed_and_resumes(virtual_mic, clips_dir):
    """SIGUSR1 closes the input (no stream on the audio server, a command said meanwhile is not heard);
    SIGUSR2 opens it again and the next command is heard."""
    import signal
    listen = _speechcmd(virtual_mic, "listen", "--json", "--seconds", "30", "--model", str(TEST_MODEL_DIR))
    try:
        assert "listening on" in _wait_for_line(listen.stderr, 30)
        assert virtual_mic.pactl("list", "short", "source-outputs").strip()      # the app's stream is open
        listen.send_signal(signal.SIGUSR1)
        assert _wait_for_line(listen.stderr, 5).startswith("paused: the microphone is closed")
        assert virtual_mic.pactl("list", "short", "source-outputs").strip() == ""   # really closed
        assert virtual_mic.play(clips_dir / "stop.wav").wait(10) == 0
        time.sleep(0.5)
        listen.send_signal(signal.SIGUSR2)
        assert "listening on" in _wait_for_line(listen.stderr, 10)
        assert virtual_mic.play(clips_dir / "stop.wav").wait(10) == 0
        time.sleep(1.5)
        listen.send_signal(signal.SIGINT)
        out, err = listen.communicate(timeout=15)
    finally:
        listen.kill()
    assert listen.returncode == 0, err
    assert [json.loads(row)["label"] for row in out.splitlines() if row.strip()] == ["stop"], (out, err)
