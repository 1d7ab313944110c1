"""Soak test: the window (offscreen), or the tray alone, listens to the virtual microphone for N minutes.

    .venv/bin/python benchmarks/soak_live.py --minutes 60 [--tray] [--data ../shared/data/speech_commands]

Generated streams with known command times (model/stream_eval.py, the test split's speakers, 120 s
each) play into the PulseAudio virtual microphone in a loop, while the real MainWindow (offscreen Qt,
the default source: ReconnectingMicrophone) recognizes them. Once, at the middle, the audio server is
stopped and started again (between two streams), and the time until the window hears audio again is
measured. Recorded: memory (RSS) over time and its growth per hour after a 5-minute warm-up, the
process's CPU, dropped audio blocks, and the live detections scored against the words played, next
to an offline `detect` of the same files (what the live path should match). Writes a JSON report
(default runs/soak_<N>min.json) and prints a summary.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # as the `speechcmd` command sets it (desktop_app/__init__.py)

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from live_audio import VirtualMic  # noqa: E402

STREAM_S = 120.0
# From the start of playback to when the window's worker sees the same sample: the audio server's
# start-up (~50 ms, tests/test_live_e2e.py) plus capture blocks and the 80 ms recognizer pacing.
PLAYBACK_DELAY_S = 0.1
SPLIT_AFTER_NEXT_START_S = 0.3
WARM_UP_S = 300.0
SAMPLE_EVERY_S = 10.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def make_streams(data_dir: Path, out_dir: Path, n_streams: int, frontend):
    from model.stream_eval import StreamConfig, make_stream, write_labels
    streams = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for k in range(n_streams):
        wav, csv = out_dir / f"soak_{k}.wav", out_dir / f"soak_{k}.csv"
        if not wav.exists():
            samples, spans = make_stream(data_dir, "test", StreamConfig(seconds=STREAM_S, seed=900 + k), frontend)
            sf.write(wav, samples, frontend.sample_rate_hz, subtype="PCM_16")
            write_labels(csv, spans)
        streams.append((wav, csv))
    return streams


def growth_mb_per_hour(samples: list[dict]) -> float | None:
    late = [s for s in samples if s["t_s"] >= WARM_UP_S]
    if len(late) < 3:
        return None
    t = np.array([s["t_s"] for s in late]) / 3600.0
    mb = np.array([s["rss_mb"] for s in late])
    return float(np.polyfit(t, mb, 1)[0])


def _percentile(values, q):
    values = [v for v in values if v is not None]
    return round(float(np.percentile(values, q)), 2) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "speech_commands"))
    parser.add_argument("--model", default=str(ROOT / "assets" / "model"))
    parser.add_argument("--streams", type=int, default=3, help="different generated streams played in turn")
    parser.add_argument("--no-restart", action="store_true", help="do not restart the audio server")
    parser.add_argument("--tray", action="store_true", help="the tray alone (no window), as `gui --tray`")
    parser.add_argument("--out", help="JSON report (default runs/soak_<N>min.json)")
    args = parser.parse_args()
    out_path = Path(args.out or ROOT / "runs" / f"soak_{args.minutes:g}min.json")

    from PySide6.QtCore import QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from audio.capture import rescan_devices
    from desktop_app.model_loader import BackgroundModel
    from desktop_app.window import MainWindow
    from desktop_app.cli import run_detection
    from model.detector import Detection
    from model.labels import COMMANDS
    from model.stream_eval import pool_scores, read_labels, score_stream
    from model.streaming import load_streaming_model

    offline_model = load_streaming_model(args.model)
    streams = make_streams(Path(args.data), ROOT / "runs" / "soak_streams", args.streams, offline_model.frontend)
    spans = {wav: read_labels(csv) for wav, csv in streams}
    offline = {wav: score_stream(list(run_detection(offline_model, [wav], offline_model.detector)), spans[wav],
                                 STREAM_S) for wav, _ in streams}

    scratch = tempfile.TemporaryDirectory()
    runtime = Path(scratch.name) / "pulse"
    mic = VirtualMic.start(runtime)
    os.environ["PULSE_RUNTIME_PATH"] = mic.env["PULSE_RUNTIME_PATH"]
    rescan_devices()

    app = QApplication([sys.argv[0]])
    settings = QSettings(str(Path(scratch.name) / "settings.ini"), QSettings.Format.IniFormat)
    # Every command bound to a program that does nothing: how soon actions start, all hour long.
    actions = Path(scratch.name) / "actions.toml"
    actions.write_text("".join(f'[actions.{label}]\nrun = ["true"]\n' for label in COMMANDS))
    actions.chmod(0o600)   # a file others may write is refused, whatever the umask made of it
    if args.tray:
        # The app as `gui --tray` runs it: the session and its tray icon, no window, no frames sent.
        from desktop_app.live_session import LiveSession
        from desktop_app.tray import Tray
        session = LiveSession(BackgroundModel.from_folder(args.model), settings=settings, actions_path=actions)
        session.load_actions(required=True)
        session.model.start()
        session.set_frames_wanted(False)
        tray = Tray(session, lambda: None, app.quit, list_models=lambda: [])
        tray.show()
        close = session.shutdown
    else:
        window = MainWindow(BackgroundModel.from_folder(args.model), settings=settings, actions_path=actions)
        window.device_combo.setCurrentIndex(0)   # the system default input: the virtual microphone
        window.show()
        session, close = window.session, window.shutdown
    action_results = []
    session.action_reported.connect(action_results.append)
    session.start_live()
    worker = session.worker

    lock = threading.Lock()
    detections: list[tuple[float, Detection]] = []    # (monotonic time received, event)
    notices: list[tuple[float, bool, str]] = []
    resumed = threading.Event()

    def on_detected(event) -> None:   # on the worker's thread: the time is taken as the event fires
        with lock:
            detections.append((time.monotonic(), event))

    def on_input_changed(notice) -> None:
        with lock:
            notices.append((time.monotonic(), notice.lost, notice.message))
        if not notice.lost:
            resumed.set()

    worker.detected.connect(on_detected, Qt.ConnectionType.DirectConnection)
    worker.input_changed.connect(on_input_changed, Qt.ConnectionType.DirectConnection)

    started_at = time.monotonic()
    cpu_at_start = sum(os.times()[:2])
    duration_s = args.minutes * 60.0
    plays: list[dict] = []
    restart: dict = {}
    samples: list[dict] = []
    state = {"mic": mic, "done": False}

    def player() -> None:
        k = 0
        time.sleep(3.0)   # the first stream starts once the capture has settled
        while time.monotonic() - started_at + STREAM_S <= duration_s:
            wav = streams[k % len(streams)][0]
            play_at = time.monotonic()
            rc = state["mic"].play(wav).wait()
            plays.append({"wav": str(wav), "start": play_at, "end": time.monotonic(), "rc": rc})
            k += 1
            halfway = time.monotonic() - started_at >= duration_s / 2
            if halfway and not restart and not args.no_restart:
                stopped_at = time.monotonic()
                resumed.clear()   # before the stop: a fast reconnect must not be erased afterwards
                state["mic"].stop()
                time.sleep(2.0)
                state["mic"] = VirtualMic.start(runtime)
                back_at = time.monotonic()
                ok = resumed.wait(60)
                restart.update(stopped_s=stopped_at - started_at, back_s=back_at - started_at,
                               resumed=ok, resume_after_back_s=(time.monotonic() - back_at) if ok else None)
                time.sleep(1.0)
        state["done"] = True

    def sample() -> None:
        window_vm = session.view_model
        samples.append({"t_s": round(time.monotonic() - started_at, 1), "rss_mb": round(rss_mb(), 2),
                        "cpu_s": round(sum(os.times()[:2]) - cpu_at_start, 2),
                        "dropped_blocks": int(window_vm.dropped_blocks)})
        if state["done"] or time.monotonic() - started_at > duration_s + 60:
            app.quit()

    thread = threading.Thread(target=player, daemon=True)
    thread.start()
    timer = QTimer()
    timer.timeout.connect(sample)
    timer.start(int(SAMPLE_EVERY_S * 1000))
    sample()
    app.exec()
    close()
    state["mic"].stop()
    wall_s = time.monotonic() - started_at

    scores, per_play = [], []
    for k, play in enumerate(plays):
        wav = Path(play["wav"])
        # Plays follow each other at once: a detection belongs to this play until shortly after the
        # next one starts (the last word of a stream fires up to ~0.5 s after its end, the first word
        # of the next starts no earlier than its first slot's onset).
        until = plays[k + 1]["start"] + SPLIT_AFTER_NEXT_START_S if k + 1 < len(plays) else play["end"] + 1.0
        events = [Detection(t - play["start"] - PLAYBACK_DELAY_S, e.label, e.score)
                  for t, e in detections if play["start"] <= t < until]
        score = score_stream(events, spans[wav], STREAM_S)
        scores.append(score)
        per_play.append({"wav": wav.name, "rc": play["rc"], **score.as_dict()})
    live = pool_scores(scores).as_dict() if scores else None
    reference = pool_scores([offline[Path(p["wav"])] for p in plays]).as_dict() if plays else None
    cpu_s = samples[-1]["cpu_s"] if samples else None
    report = {
        "minutes": args.minutes, "wall_s": round(wall_s, 1), "model": args.model, "plays": len(plays),
        "memory_mb_first_last": [samples[0]["rss_mb"], samples[-1]["rss_mb"]] if samples else None,
        "memory_growth_mb_per_hour_after_warm_up": growth_mb_per_hour(samples),
        "cpu_percent_of_one_core": round(100.0 * cpu_s / wall_s, 2) if cpu_s is not None else None,
        "dropped_blocks": samples[-1]["dropped_blocks"] if samples else None,
        "actions": {"ran": len(action_results), "failed": sum(not r.ok for r in action_results),
                    "spawn_ms_median": _percentile([r.spawn_ms for r in action_results], 50),
                    "spawn_ms_p99": _percentile([r.spawn_ms for r in action_results], 99),
                    "spawn_ms_max": _percentile([r.spawn_ms for r in action_results], 100)},
        "restart": restart, "notices": [(round(t - started_at, 2), lost, m) for t, lost, m in notices],
        "live": live, "offline_same_streams": reference, "per_play": per_play, "samples": samples,
        "plays_timed": [{"wav": Path(p["wav"]).name, "start_s": round(p["start"] - started_at, 3),
                         "end_s": round(p["end"] - started_at, 3)} for p in plays],
        "detections": [(round(t - started_at, 3), e.label, round(e.score, 4)) for t, e in detections],
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=1))
    print(f"soak {args.minutes:g} min ({wall_s / 60:.1f} min wall), {len(plays)} streams of {STREAM_S:g} s played")
    print(f"memory: {report['memory_mb_first_last']} MB, growth after warm-up "
          f"{report['memory_growth_mb_per_hour_after_warm_up']} MB/h; CPU {report['cpu_percent_of_one_core']}% of a core; "
          f"dropped blocks {report['dropped_blocks']}")
    print(f"restart: {restart}")
    print(f"actions: {report['actions']}")
    for name, score in (("live", live), ("offline", reference)):
        if score:
            print(f"{name:8s} words {score['words']}: correct {score['correct_pct']:.1f}%  wrong {score['wrong_pct']:.1f}%  "
                  f"false positives {score['false_positive_pct']:.1f}%")
    print(f"report: {out_path}")
    scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
