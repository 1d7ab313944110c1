"""A real audio server as a virtual microphone, for end-to-end tests and latency measurements.

PulseAudio runs with a null sink `virt` (16 kHz mono); its monitor is the default source, so whatever
is played into the sink is what a program recording from the default input hears. Everything lives in
a private runtime folder, so it neither needs nor disturbs a desktop's own audio server.

    mic = VirtualMic.start(tmp_dir)     # raises VirtualMicUnavailable with the reason
    subprocess.run([...], env=mic.env)  # children find the server through PULSE_RUNTIME_PATH
    mic.play(wav_path)                  # -> Popen of paplay into the sink
    mic.stop()
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

SINK = "virt"


class VirtualMicUnavailable(Exception):
    """No audio server can run here; the message says why (tests skip with it)."""


class VirtualMic:
    def __init__(self, runtime_dir: Path):
        self.runtime_dir = runtime_dir
        self.env = dict(os.environ, PULSE_RUNTIME_PATH=str(runtime_dir))
        self.env.pop("PULSE_SERVER", None)
        self._keep_awake: subprocess.Popen | None = None

    @classmethod
    def start(cls, runtime_dir: str | Path) -> "VirtualMic":
        for tool in ("pulseaudio", "pactl", "pacat", "paplay"):
            if shutil.which(tool) is None:
                raise VirtualMicUnavailable(f"{tool} is not installed (apt install pulseaudio pulseaudio-utils)")
        runtime_dir = Path(runtime_dir)
        runtime_dir.mkdir(parents=True, exist_ok=True)
        mic = cls(runtime_dir)
        # -n: skip default.pa, which probes hardware (udev, ALSA cards) that a container or CI runner
        # does not have; only the native protocol is needed. Running as root prints a warning only.
        started = subprocess.run(
            ["pulseaudio", "-D", "-n", "--exit-idle-time=-1", "--disallow-exit",
             "--load=module-native-protocol-unix", "--log-target=stderr"],
            env=mic.env, capture_output=True, text=True, timeout=20)
        if started.returncode != 0:
            reason = (started.stderr.strip().splitlines() or ["no message"])[-1]
            raise VirtualMicUnavailable(f"pulseaudio did not start: {reason}")
        try:
            mic.pactl("load-module", "module-null-sink", f"sink_name={SINK}", "rate=16000", "channels=1")
            mic.pactl("set-default-sink", SINK)
            mic.pactl("set-default-source", f"{SINK}.monitor")
        except VirtualMicUnavailable:
            mic.stop()
            raise
        # An idle null sink delivers nothing to its monitor, and a new recording stream would lose its
        # first ~2 s while the sink wakes up: keep silence flowing into the sink all the time.
        mic._keep_awake = subprocess.Popen(["pacat", "--playback", "-d", SINK, "--latency-msec=20", "/dev/zero"],
                                           env=mic.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        return mic

    def pactl(self, *args: str) -> str:
        done = subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, timeout=20)
        if done.returncode != 0:
            raise VirtualMicUnavailable(f"pactl {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def play(self, wav_path: str | Path) -> subprocess.Popen:
        """Start playing a recording into the virtual microphone (returns at once)."""
        return subprocess.Popen(["paplay", "-d", SINK, "--latency-msec=20", str(wav_path)], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        if self._keep_awake is not None:
            self._keep_awake.terminate()
            self._keep_awake.wait(5)
            self._keep_awake = None
        subprocess.run(["pulseaudio", "-k"], env=self.env, capture_output=True, timeout=20)
