"""Does adapting on a voice's own false alarms ("Not a command") lower that voice's alarms on other talk?

    .venv/bin/python benchmarks/adapt_on_false_alarms.py [--model assets/model] [--minutes 30] [--voice en-us+f4]
        [--out runs/adapt_fa]

One synthetic voice (espeak-ng; by default a variant that no training or choice heard) speaks two
halves of talk, A and B (`--minutes` each; sentences of the `fortunes` test split, a third with a
command near-miss inserted, as scripts/synthesize_talk.py does), and the ten commands, five takes each
to enroll and five more held out. As a user would: P0 is enrolled on the command takes; the base model
and P0 run over A at their shipped settings and the 2 s before each of their alarms (what the window
keeps for "Not a command") go to `_not_commands_/`; P1 is enrolled on the same takes plus those clips.
Each model then runs over B: alarms per hour, and the voice's held-out commands (each alone between
1 s pauses) found with the right label. Prints one line per model.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from desktop_app.cli import run_detection           # noqa: E402
from model.enroll import enroll                      # noqa: E402
from model.labels import COMMANDS                    # noqa: E402
from model.streaming import load_streaming_model     # noqa: E402
from model.takes import NOT_COMMANDS, EnrollConfig   # noqa: E402
from synthesize_talk import NEAR_WORDS, sentences, speak, split_of   # noqa: E402

RATE = 16000
CLIP_S = 2.0          # as desktop_app/worker.py EVENT_AUDIO_S
LATE_S = 0.08         # the window's clip ends with the recognizer call the event came in (80 ms)


def talk(voice: str, minutes: float, rng, pool: list[str], work: Path) -> np.ndarray:
    parts, seconds = [], 0.0
    while seconds < minutes * 60:
        text = pool[rng.integers(len(pool))]
        if rng.random() < 1 / 3:
            words = text.split()
            words.insert(int(rng.integers(0, len(words) + 1)), NEAR_WORDS[rng.integers(len(NEAR_WORDS))])
            text = " ".join(words)
        said = speak("espeak", voice, text, 1.0, float(rng.uniform(0.9, 1.1)), work)
        pause = np.zeros(int(RATE * rng.uniform(0.15, 0.8)), np.float32)
        parts += [said, pause]
        seconds += (said.size + pause.size) / RATE
    audio = np.concatenate(parts)
    return 0.3 * audio / (np.abs(audio).max() + 1e-9)


def commands(voice: str, rng, work: Path) -> dict[str, list[np.ndarray]]:
    out = {}
    for word in COMMANDS:
        takes = []
        for _ in range(10):
            said = speak("espeak", voice, word, float(rng.uniform(0.9, 1.1)), float(rng.uniform(0.85, 1.15)), work)
            takes.append(0.3 * said / (np.abs(said).max() + 1e-9))
        out[word] = takes
    return out


def alarms(model_dir: Path, wav: Path) -> list:
    model = load_streaming_model(model_dir)
    return list(run_detection(model, [wav], model.detector))


def commands_found(model_dir: Path, held_out: list[tuple[str, np.ndarray]], work: Path) -> float:
    """Each take alone, 1 s of silence before and after, in one stream: share found with the right label."""
    parts, spans, t = [], [], 0.0
    for word, take in held_out:
        parts += [np.zeros(RATE, np.float32), take.astype(np.float32), np.zeros(RATE, np.float32)]
        spans.append((word, t + 1.0, t + 1.0 + take.size / RATE + 1.0))
        t += 2.0 + take.size / RATE
    wav = work / "held_out_commands.wav"
    sf.write(wav, np.concatenate(parts), RATE, subtype="PCM_16")
    events = alarms(model_dir, wav)
    found = sum(any(e.label == word and start <= e.time_s <= end for e in events) for word, start, end in spans)
    return found / len(spans)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(ROOT / "assets" / "model"))
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--voice", default="en-us+f4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--talk-s", type=float, default=0.0,
                        help="also enroll this much of the voice's talk as _unknown_ (the dialog's 20 s; not from A or B)")
    parser.add_argument("--out", default=str(ROOT / "runs" / "adapt_fa"))
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = np.random.default_rng(args.seed)
    pool = [s for s in sentences() if split_of(s) == "test"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        halves = {}
        for name in ("A", "B"):
            halves[name] = out / f"talk_{name}.wav"
            sf.write(halves[name], talk(args.voice, args.minutes, rng, pool, work), RATE, subtype="PCM_16")
        said = commands(args.voice, rng, work)
        own_talk = talk(args.voice, args.talk_s / 60, rng, pool, work) if args.talk_s > 0 else None
    takes = {"P0": out / "takes_P0", "P1": out / "takes_P1"}
    for folder in takes.values():
        for word, clips in said.items():
            (folder / word).mkdir(parents=True)
            for i, clip in enumerate(clips[:5]):
                sf.write(folder / word / f"take_{i + 1}.wav", clip, RATE, subtype="PCM_16")
        if own_talk is not None:
            (folder / "_unknown_").mkdir()
            sf.write(folder / "_unknown_" / "talk.wav", own_talk, RATE, subtype="PCM_16")
    held_out = [(word, clip) for word, clips in said.items() for clip in clips[5:]]
    # The user's course: the base model, then P0 (adapted on the command takes), fire on talk A; each
    # alarm is marked "Not a command"; P1 is adapted on the same takes plus those clips.
    audio_a, _ = sf.read(halves["A"], dtype="float32")
    enroll(takes["P0"], out / "P0", args.model, EnrollConfig())
    models = {"base": Path(args.model), "P0": out / "P0"}
    (takes["P1"] / NOT_COMMANDS).mkdir()
    for name in ("base", "P0"):
        fired = alarms(models[name], halves["A"])
        for i, event in enumerate(fired):
            end = int(round((event.time_s + LATE_S) * RATE))
            clip = audio_a[max(0, end - int(CLIP_S * RATE)):end]
            sf.write(takes["P1"] / NOT_COMMANDS / f"{name}_{i:03d}_{event.label}.wav", clip, RATE, subtype="PCM_16")
        print(f"talk A ({args.minutes:g} min, voice {args.voice}): {name} fires {len(fired)} times "
              f"({', '.join(e.label for e in fired)}), kept as not-commands", flush=True)
    enroll(takes["P1"], out / "P1", args.model, EnrollConfig())
    models["P1"] = out / "P1"
    hours_b = sf.info(halves["B"]).duration / 3600
    for name, folder in models.items():
        found = commands_found(folder, held_out, out)
        n = len(alarms(folder, halves["B"]))
        print(f"{name:>4}: talk B {60 * hours_b:.1f} min: {n} alarms ({n / hours_b:.1f} an hour); the voice's "
              f"{len(held_out)} held-out commands found {100 * found:.1f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
