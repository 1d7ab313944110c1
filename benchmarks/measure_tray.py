"""The app as it runs all day: `gui --tray` against the window, listening to the virtual microphone.

    .venv/bin/python benchmarks/measure_tray.py [--seconds 60] [--runs 3]

On a real X server with a real tray (Xvfb + trayer) and PulseAudio's virtual microphone, with the demo
recording played into it in a loop (commands and noise):
- start to listening: process start to the recognizer being ready on microphone audio (`SPEECHCMD_TIMING`),
  `gui --tray` (the window is never built);
- CPU: the process's CPU time (all threads) / wall time over `--seconds`, from 3 s after start-up;
  memory: VmRSS at the end and the peak (VmHWM);
- the same for the window listening (`gui --device default`, drawn at 20 Hz), for comparison.
"""
from __future__ import annotations

import argparse
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from live_audio import SINK, VirtualMic   # noqa: E402
from proc_stats import cpu_s, memory_mb, threads_cpu_s   # noqa: E402

DEMO = REPO / "assets" / "demo" / "demo_stream.wav"
VERBOSE = "--verbose" in sys.argv


def threads_by_name(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, seconds in threads_cpu_s(pid).items():
        name = key.rsplit("/", 1)[0]
        out[name] = out.get(name, 0.0) + seconds
    return out


def wait_for(stream, text: str, timeout_s: float) -> str | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.2)
        if ready:
            line = stream.readline()
            if text in line:
                return line
    return None


def run_once(args_gui: list[str], env: dict, mic: VirtualMic, seconds: float) -> dict:
    app = subprocess.Popen([sys.executable, "-m", "desktop_app.cli", "gui", *args_gui], cwd=REPO, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    player = None
    try:
        line = wait_for(app.stderr, "recognizer ready", 60)
        if line is None:
            raise RuntimeError("the app did not report the recognizer ready")
        ready_s = float(line.split("recognizer ready")[1].split()[0])
        player = subprocess.Popen(["sh", "-c", f"while true; do paplay -d {SINK} {DEMO}; done"], env=mic.env)
        time.sleep(3.0)
        cpu0, wall0, threads0 = cpu_s(app.pid), time.monotonic(), threads_by_name(app.pid)
        time.sleep(seconds)
        cpu1, wall1, threads1 = cpu_s(app.pid), time.monotonic(), threads_by_name(app.pid)
        if VERBOSE:
            shares = {k: (threads1[k] - threads0.get(k, 0.0)) / (wall1 - wall0) for k in threads1}
            print("  threads:", ", ".join(f"{k} {100 * v:.1f} %" for k, v in sorted(shares.items(), key=lambda x: -x[1])
                                         if v > 0.001))
        rss, peak = memory_mb(app.pid, "VmRSS"), memory_mb(app.pid)
        app.send_signal(signal.SIGINT)
        app.wait(20)
    finally:
        app.kill()
        if player is not None:
            player.kill()
            subprocess.run(["pkill", "-f", f"paplay -d {SINK} {DEMO}"])
    return {"start_to_listening_s": ready_s, "cpu_share": (cpu1 - cpu0) / (wall1 - wall0), "rss_mb": rss,
            "peak_mb": peak}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--verbose", action="store_true", help="CPU per thread")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        display = ":%d" % (70 + os.getpid() % 20)
        xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp", "-noreset"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        mic = VirtualMic.start(Path(tmp) / "pulse")
        env = dict(mic.env, DISPLAY=display, QT_QPA_PLATFORM="xcb", SPEECHCMD_TIMING="1",
                   XDG_CONFIG_HOME=str(Path(tmp) / "config"), XDG_DATA_HOME=str(Path(tmp) / "data"))
        time.sleep(1.0)
        trayer = subprocess.Popen(["trayer"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        try:
            for name, gui_args in (("tray", ["--tray"]), ("window", ["--device", "default"])):
                runs = [run_once(gui_args, env, mic, args.seconds) for _ in range(args.runs)]
                summary = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
                starts = ", ".join("%.2f" % r["start_to_listening_s"] for r in runs)
                cpus = ", ".join("%.1f" % (100 * r["cpu_share"]) for r in runs)
                print(f"{name}: median of {args.runs} runs of {args.seconds:g} s: "
                      f"start to listening {summary['start_to_listening_s']:.2f} s (runs: {starts}), "
                      f"CPU {100 * summary['cpu_share']:.1f} % of one core (runs: {cpus}), "
                      f"RSS {summary['rss_mb']:.0f} MB, peak {summary['peak_mb']:.0f} MB", flush=True)
        finally:
            trayer.kill()
            mic.stop()
            xvfb.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
