"""Measure the live app: latency through a virtual microphone, start-up time, CPU and memory.

    .venv/bin/python benchmarks/measure_live.py [--model DIR] [--rounds 2] [--startup-runs 3] [--display offscreen|xvfb]

Needs PulseAudio (the same virtual microphone as tests/test_live_e2e.py). Prints the numbers that
docs/LIVE.md reports. What each number means:

- latency: from the end of a spoken word (last 10 ms frame 12 dB above the clip's noise floor) to the
  moment the recognizer has returned the event, through PulseAudio -> ALSA -> PortAudio -> capture
  queue -> resampler -> recognizer. The word end is placed on the wall clock with the capture block
  it arrived in, minus the input latency PortAudio reports for the stream (the audio server's buffer).
- start-up: process start to the first spectrogram frame drawn (`SPEECHCMD_TIMING=1`), `speechcmd gui
  --input-file`; and to the recognizer being ready (the network loads in the background after the
  window shows, then catches up on the audio heard meanwhile).
- CPU: process CPU time (all threads, and per thread) / wall time of the running GUI playing a 30 s
  recording in real time, measured from 2 s after the recognizer is ready to 1 s before the end
  (start-up excluded). Peak memory: the process's VmHWM.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from audio.capture import DEFAULT_BLOCK_MS, MicrophoneSource, Pacer, rescan_devices   # noqa: E402
from conftest import CLIPS_DIR, make_stream                   # noqa: E402
from proc_stats import cpu_s, memory_mb, threads_cpu_s       # noqa: E402
from desktop_app.listen_mode import TalkGate                  # noqa: E402
from live_audio import VirtualMic                             # noqa: E402
from model.checkpoint import default_model_dir, load_checkpoint   # noqa: E402
from model.labels import COMMANDS                             # noqa: E402
from model.streaming import StreamingRecognizer               # noqa: E402

RATE_HZ = 16000
VERBOSE = "--verbose" in sys.argv


def word_end_s(clip: np.ndarray) -> float:
    """End of the word in a 1 s clip: the last 10 ms frame 12 dB above the noise floor (20th percentile)."""
    frames = clip[: clip.size // 160 * 160].reshape(-1, 160)
    level_db = 10 * np.log10(np.convolve((frames ** 2).mean(1), np.ones(3) / 3, mode="same") + 1e-12)
    loud = np.nonzero(level_db > np.percentile(level_db, 20) + 12.0)[0]
    return (loud[-1] + 1) * 0.01


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def measure_latency(mic: VirtualMic, model, rounds: int, block_ms: float) -> dict:
    import torch
    torch.set_num_threads(1)   # as `speechcmd listen` / `gui` do
    words = list(COMMANDS)
    spacing_s, first_s = 1.8, 0.8
    latencies, algorithmic, missed, wrong, ptt_fired = [], [], 0, 0, 0
    for round_index in range(rounds):
        placements = [(w, first_s + i * spacing_s) for i, w in enumerate(words)]
        total_s = first_s + len(words) * spacing_s + 0.5
        played = make_stream(placements, total_s, seed=round_index)
        ends_in_file = [start + word_end_s(sf.read(CLIPS_DIR / f"{w}.wav", dtype="float32")[0]) for w, start in placements]
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "words.wav"
            sf.write(wav, played, RATE_HZ, subtype="PCM_16")
            source = MicrophoneSource(None, RATE_HZ, block_ms=block_ms)
            recognizer = StreamingRecognizer(model)
            source.start()
            captured, arrivals, events = [], [], []   # arrivals: (wall time, samples so far incl. this block)
            n_samples, player, stop_at = 0, None, None
            try:
                start_wait = time.monotonic()
                pacer = Pacer()   # the loop of `listen` and the GUI worker
                while True:
                    pacer.wait()
                    block = source.read(0.1)
                    now = time.monotonic()
                    if block is not None and block.size:
                        n_samples += block.size
                        captured.append(block)
                        arrivals.append((now, n_samples))
                        for event in recognizer.process(block).events:
                            events.append((event, time.monotonic()))
                    if player is None and n_samples > 0.5 * RATE_HZ:
                        player = mic.play(wav)
                    if player is not None and stop_at is None and player.poll() is not None:
                        stop_at = time.monotonic() + 1.5
                    if stop_at is not None and now > stop_at:
                        break
                    if now - start_wait > total_s + 20:
                        raise RuntimeError("playback did not finish")
            finally:
                source.stop()
            stream = np.concatenate(captured)
            # Where the recording starts in the captured stream: cross-correlate all of it (the noise bed
            # repeats every 3 s, so a short piece would match at several places).
            head = played
            size = 1 << int(np.ceil(np.log2(stream.size + head.size)))
            corr = np.fft.irfft(np.fft.rfft(stream, size) * np.conj(np.fft.rfft(head, size)), size)[: stream.size]
            offset = int(np.argmax(corr))
            if VERBOSE:
                print(f"round {round_index}: recording starts at stream {offset / RATE_HZ:.3f} s; events:",
                      [(e.label, e.time_s) for e, _ in events])
            times = np.array([a[0] for a in arrivals])
            counts = np.array([a[1] for a in arrivals])
            for (word, start), end_in_file in zip(placements, ends_in_file):
                end_sample = offset + int(round(end_in_file * RATE_HZ))
                start_s = (offset / RATE_HZ) + start
                match = [(e, t) for e, t in events if start_s <= e.time_s <= start_s + 1.0 + 0.8]
                if not match:
                    missed += 1
                    continue
                event, event_wall = match[0]
                if event.label != word:
                    wrong += 1
                    continue
                block = int(np.searchsorted(counts, end_sample))   # first block that holds the word end
                end_wall = times[block] - (counts[block] - end_sample) / RATE_HZ - source.input_latency_s
                latencies.append(event_wall - end_wall)
                # Push-to-talk, key let go the moment the word ends: does the gate still let it through?
                gate = TalkGate()
                gate.enabled = True
                gate.press(end_wall - 1.0)
                gate.release(end_wall)
                ptt_fired += gate.allows(event_wall)
                algorithmic.append(event.time_s - end_sample / RATE_HZ)
                if VERBOSE:
                    print(f"  {word:6s} latency {1000 * latencies[-1]:6.0f} ms (in stream time {1000 * algorithmic[-1]:5.0f} ms)")
    return {"block_ms": block_ms, "words": rounds * len(words), "measured": len(latencies), "missed": missed, "wrong": wrong,
            "median_ms": 1000 * float(np.median(latencies)), "p90_ms": 1000 * percentile(latencies, 90),
            "min_ms": 1000 * float(min(latencies)), "max_ms": 1000 * float(max(latencies)),
            "algorithmic_median_ms": 1000 * float(np.median(algorithmic)),
            "input_latency_ms": 1000 * (source.input_latency_s or 0.0),
            "push_to_talk_fired_if_released_at_word_end": ptt_fired}


def _gui_command(model_dir, wav, png):
    return [sys.executable, "-m", "desktop_app.cli", "gui", "--model", str(model_dir), "--input-file", str(wav),
            "--screenshot", str(png)]


def _env(display):
    env = dict(os.environ, SPEECHCMD_TIMING="1", PYTHONUNBUFFERED="1")
    if display == "offscreen":
        env["QT_QPA_PLATFORM"] = "offscreen"
    return env


def _wrap(cmd, display):
    return ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24"] + cmd if display == "xvfb" else cmd


def measure_startup(model_dir, runs: int, display: str) -> dict:
    ages, cpus, ready_ages = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "short.wav"
        sf.write(wav, make_stream([("yes", 0.2)], 1.5), RATE_HZ, subtype="PCM_16")
        for _ in range(runs):
            done = subprocess.run(_wrap(_gui_command(model_dir, wav, Path(tmp) / "s.png"), display), cwd=REPO,
                                  env=_env(display), capture_output=True, text=True, timeout=120)
            line = [l for l in done.stderr.splitlines() if "first frame drawn" in l]
            ready = [l for l in done.stderr.splitlines() if "recognizer ready" in l]
            if done.returncode != 0 or not line or not ready:
                raise RuntimeError(done.stderr)
            ages.append(float(line[0].split("drawn")[1].split()[0]))
            cpus.append(float(line[0].split("(cpu")[1].split()[0]))
            ready_ages.append(float(ready[0].split("ready")[1].split()[0]))
    return {"runs": runs, "median_s": statistics.median(ages), "max_s": max(ages), "all_s": ages,
            "cpu_median_s": statistics.median(cpus),
            "recognizer_ready_median_s": statistics.median(ready_ages), "recognizer_ready_all_s": ready_ages}


def _python_child(pid):
    """Under xvfb-run the GUI is a grandchild; find the python process."""
    for _ in range(100):
        for child in Path("/proc").iterdir():
            if child.name.isdigit():
                try:
                    cmdline = (child / "cmdline").read_bytes()
                except OSError:
                    continue
                if b"desktop_app.cli" in cmdline and b"gui" in cmdline and b"xvfb" not in cmdline:
                    return int(child.name)
        time.sleep(0.1)
    return pid


def measure_cpu(model_dir, wav: Path, display: str) -> dict:
    duration_s = sf.info(str(wav)).duration
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(_wrap(_gui_command(model_dir, wav, Path(tmp) / "s.png"), display), cwd=REPO,
                                env=_env(display), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        pid = _python_child(proc.pid) if display == "xvfb" else proc.pid
        for line in proc.stderr:
            if "first frame drawn" in line:
                first_frame_at = time.monotonic()
            if "recognizer ready" in line:
                break
        time.sleep(2.0)
        cpu0, threads0, t0 = cpu_s(pid), threads_cpu_s(pid), time.monotonic()
        time.sleep(max(1.0, duration_s - 3.0 - (time.monotonic() - first_frame_at)))
        cpu1, threads1, t1 = cpu_s(pid), threads_cpu_s(pid), time.monotonic()
        peak_mb = memory_mb(pid)
        rest = proc.stderr.read()
        proc.wait(60)
    if proc.returncode != 0:
        raise RuntimeError(rest)
    per_thread = {name: round(100 * (cpu - threads0.get(name, 0.0)) / (t1 - t0), 1) for name, cpu in threads1.items()}
    return {"window_s": t1 - t0, "cpu_pct_of_one_core": 100 * (cpu1 - cpu0) / (t1 - t0), "peak_rss_mb": peak_mb,
            "cpu_pct_by_thread": {name: pct for name, pct in per_thread.items() if pct >= 0.1}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(default_model_dir()))
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the 10 command words for latency")
    parser.add_argument("--startup-runs", type=int, default=3)
    parser.add_argument("--display", choices=("offscreen", "xvfb"), default="offscreen")
    parser.add_argument("--cpu-file", default=str(REPO / "assets" / "demo" / "demo_stream.wav"))
    parser.add_argument("--skip", nargs="*", default=[], choices=("latency", "startup", "cpu"))
    parser.add_argument("--block-ms", type=float, default=DEFAULT_BLOCK_MS, help="capture block for the latency run")
    parser.add_argument("--verbose", action="store_true", help="print the events of each latency round")
    args = parser.parse_args()
    model = load_checkpoint(args.model)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    if "latency" not in args.skip:
        with tempfile.TemporaryDirectory() as tmp:
            mic = VirtualMic.start(Path(tmp) / "pulse")
            os.environ["PULSE_RUNTIME_PATH"] = mic.env["PULSE_RUNTIME_PATH"]
            rescan_devices()
            try:
                print("latency:", measure_latency(mic, model, args.rounds, args.block_ms))
            finally:
                mic.stop()
    if "startup" not in args.skip:
        print(f"startup ({args.display}):", measure_startup(args.model, args.startup_runs, args.display))
    if "cpu" not in args.skip:
        print(f"cpu/memory ({args.display}):", measure_cpu(args.model, Path(args.cpu_file), args.display))
    return 0


if __name__ == "__main__":
    sys.exit(main())
