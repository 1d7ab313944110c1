"""`speechcmd detect` on long files as a user runs it: wall time on one core and peak memory.

    .venv/bin/python benchmarks/bench_detect_file.py [--minutes 10 60]

Writes noise-plus-words recordings of the given lengths to a temporary folder (the committed test
clips repeated over the committed noise), runs `taskset -c 0 speechcmd detect` on each with
OMP_NUM_THREADS=1, and reports the real-time factor (wall seconds / audio seconds, start-up included)
and the child's peak resident memory. Flat memory means the 60-minute file peaks like the short one.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import WORDS, make_stream  # noqa: E402  (the same generator the tests use)


def write_recording(path: Path, minutes: float) -> None:
    """Writes in 1-minute pieces so that making the file does not need the whole file in memory."""
    with sf.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as handle:
        for minute in range(int(np.ceil(minutes))):
            placements = [(WORDS[(minute * 20 + i) % len(WORDS)], 0.5 + 3.0 * i) for i in range(19)]
            handle.write(make_stream(placements, total_s=60.0, seed=minute))


def run_detect(path: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, number of events) of one detect run in a fresh process."""
    command = [str(ROOT / ".venv/bin/speechcmd"), "detect", "--json", str(path)]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.perf_counter()
    # A wrapper process per run so that RUSAGE_CHILDREN reports this run's peak alone.
    probe = ("import resource,subprocess,sys; r=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
             "print(r.stdout.count(chr(10)), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - start
    n_events, peak_kib = map(int, out.stdout.split())
    return wall, peak_kib / 1024, n_events


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            path = Path(tmp) / f"rec_{minutes:g}min.wav"
            write_recording(path, minutes)
            wall, peak_mib, n_events = run_detect(path)
            print(f"{minutes:>4g} min file: {wall:6.1f} s wall, real-time factor {wall / (minutes * 60):.4f} "
                  f"(start-up included), peak memory {peak_mib:.0f} MiB, {n_events} events "
                  f"({int(minutes) * 19} words spoken)")


if __name__ == "__main__":
    main()
