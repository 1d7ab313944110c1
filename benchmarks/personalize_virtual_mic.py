"""The Personalize dialog recording through a real audio server: how good are takes that went through
the microphone path, against the same takes enrolled from their files? Not a test: minutes, and it
reads ../shared/data.

    .venv/bin/python benchmarks/personalize_virtual_mic.py [--speaker jackson] [--takes 5] [--json OUT]

An FSDD speaker's takes 0..N-1 of the ten digits are played, one per take, into the PulseAudio
virtual microphone (tests/live_audio.py) while the real window (offscreen Qt, the system default
input) and its PersonalizeDialog record them exactly as a user's voice: the microphone opened per
take, the countdown, "speak now" (the file starts playing `--lead-s` after it), 1.5 s kept, the take
checked; a take the checks reject is recorded again (counted). Then "Adapt the model" runs the
shipped enrollment on the recorded takes and the window switches to the personal model. The
personal model is scored on the speaker's other takes (read from files, trimmed and centred as
enrollment does, as `benchmarks/enrollment.py fsdd` scores), next to a model enrolled from the
original files of the same takes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # as the `speechcmd` command sets it

import numpy as np  # noqa: E402

from live_audio import VirtualMic  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def wait_until(app, condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app.processEvents()
        if condition():
            return True
        time.sleep(0.01)
    return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--speaker", default="jackson")
    parser.add_argument("--takes", type=int, default=5)
    parser.add_argument("--lead-s", type=float, default=0.2, help="from \"speak now\" to the start of the file")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from audio.capture import rescan_devices
    from benchmarks.enrollment import digit_clips, enroll_from, scores
    from desktop_app.model_loader import BackgroundModel
    from desktop_app.personalize import PersonalizeDialog
    from desktop_app.window import MainWindow
    from model.checkpoint import default_model_dir, load_checkpoint
    from model.takes import EnrollConfig

    recordings = SHARED / "fsdd" / "recordings"
    files = {w: [recordings / f"{d}_{args.speaker}_{t}.wav" for t in range(args.takes)] for d, w in enumerate(DIGITS)}
    cfg = EnrollConfig()
    scratch = tempfile.TemporaryDirectory()
    mic = VirtualMic.start(Path(scratch.name) / "pulse")
    os.environ["PULSE_RUNTIME_PATH"] = mic.env["PULSE_RUNTIME_PATH"]
    rescan_devices()
    app = QApplication([sys.argv[0]])
    settings = QSettings(str(Path(scratch.name) / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(BackgroundModel.from_folder(default_model_dir()), settings=settings,
                        models_dir=Path(scratch.name) / "data" / "models")
    window.device_combo.setCurrentIndex(0)   # the system default input: the virtual microphone
    window.show()
    dialog = PersonalizeDialog(window, parent=window, enroll_config=cfg)
    dialog.keep_going.setChecked(False)       # each take is started here, in time with its file
    dialog.show()
    dialog.choose(new_words=", ".join(DIGITS), takes=args.takes, talk=False, name=f"{args.speaker}_mic")
    assert dialog.begin_recording(), dialog.choose_error.text()

    started = time.monotonic()
    redone, problems = 0, []
    while (target := dialog.next_missing()) is not None:
        word, slot = target
        if dialog.takes[word][slot] is not None:
            redone += 1
            problems.append(f"{word} {slot + 1}: {dialog.takes[word][slot]['problem']}")
        assert dialog.record_next(), dialog.record_status.text()
        recording = dialog._recording
        if not wait_until(app, lambda: recording.state in ("recording", "failed"), 15.0):
            raise SystemExit(f"the microphone delivered nothing for 15 s ({recording.state})")
        time.sleep(args.lead_s)
        mic.play(files[word][slot]).wait(10)
        if not wait_until(app, lambda: dialog._recording is None, 15.0):
            raise SystemExit("a take did not end")
        if redone > 3 * len(DIGITS):
            raise SystemExit(f"too many takes rejected: {problems}")
    record_s = time.monotonic() - started
    print(f"recorded {len(DIGITS) * args.takes} takes in {record_s:.0f} s, {redone} redone: {problems}", flush=True)

    ready = []
    dialog.model_ready.connect(ready.append)
    assert dialog.start_adaptation()
    if not wait_until(app, lambda: bool(ready) or "Could not" in dialog.adapt_label.text(), 600.0):
        raise SystemExit("adaptation did not end in 10 minutes")
    if not ready:
        raise SystemExit(dialog.adapt_label.text())
    adapt_text = dialog.adapt_label.text()
    switched = tuple(window.spec.labels[-len(DIGITS):]) == tuple(sorted(DIGITS))
    personal = load_checkpoint(ready[0])
    enrollment = personal.extra["enrollment"]
    window.close()
    mic.stop()

    fs, n = personal.frontend.sample_rate_hz, personal.frontend.clip_samples
    clips, truth = digit_clips(args.speaker, args.takes, cfg, fs, n)
    mic_accuracy, mic_mistakes = scores(personal, clips, truth)
    from_files, file_seconds, _, _ = enroll_from(files, str(default_model_dir()), cfg)
    file_accuracy, file_mistakes = scores(from_files, clips, truth)
    results = {"speaker": args.speaker, "takes_per_word": args.takes, "recording_s": round(record_s, 1),
               "takes_redone": redone, "rejected": problems,
               "recorded_sound_s_median": float(np.median([t["sound_s"] for t in enrollment["takes_used"]])),
               "enroll_seconds": enrollment["seconds"], "window_switched": switched, "dialog_says": adapt_text,
               "held_out_clips": len(truth),
               "accuracy_recorded_takes": round(mic_accuracy, 4), "mistakes_recorded_takes": mic_mistakes,
               "accuracy_file_takes": round(file_accuracy, 4), "mistakes_file_takes": file_mistakes,
               "enroll_seconds_file_takes": round(file_seconds, 1)}
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
