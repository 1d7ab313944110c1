"""Synthetic training words from espeak-ng, in the Speech Commands layout (one folder per word).

    .venv/bin/python scripts/synthesize_words.py --out runs/synth [--per-command 40] [--per-other 3] [--seed 0]

Each clip: a random English espeak-ng voice and variant, pitch and speed, the word trimmed of
silence, placed at a random offset in 1 s of silence at a random level (16 kHz, int16), so that
`speechcmd train --extra-words runs/synth` treats it like a recorded clip (noise, shifts and the other
augmentations are added in training). Commands get `--per-command` clips each; `OTHER_WORDS`, many
of them near the commands in sound (never homophones), get `--per-other` each as `_unknown_`.

Needs `espeak-ng` (apt). The voices are formant synthesis: far from real speakers, an experiment in
adding variety (docs/ACCURACY.md says whether it helped).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from audio.io import read_audio  # noqa: E402
from model.labels import COMMANDS  # noqa: E402

VOICES = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "Andy", "Annie", "Alicia",
            "Belinda", "Benjamin", "David", "Ed", "Edward", "Gene", "Jacky", "John", "Lee", "Linda", "Max",
            "Michael", "Mike", "Paul", "Robert", "Steph", "Storm", "Zac", "anika", "grandpa", "klatt", "klatt2")
# Not commands and not homophones of one ("know", "write" are left out); many sound close to one.
OTHER_WORDS = (
    "yet yellow yeah yesterday yams less guess chess nose note nope now noon oak snow "
    "cup pup supper upon app cap hop dawn town gown clown crown pound round sound "
    "lift leaf laugh loft theft light night bright fight kite ride rice ripe rough "
    "of often offer awful cough if own one onion lawn gone honest "
    "stock stuff step stomp top shop spot slop "
    "goal goat ghost grow glow toe dough hello "
    "house bird cat dog tree happy marvin sheila wow bed learn follow forward backward visual "
    "zero two three four five six seven eight nine "
    "please thanks maybe okay hey what where water coffee music volume play pause next back open close"
).split()


def synthesize(word: str, voice: str, variant: str, pitch: int, speed: int, workdir: Path) -> np.ndarray:
    path = workdir / "word.wav"
    name = f"{voice}+{variant}" if variant else voice
    subprocess.run(["espeak-ng", "-v", name, "-p", str(pitch), "-s", str(speed), "-w", str(path),
                    word], check=True, capture_output=True)
    return read_audio(path, 16000)


def trim(samples: np.ndarray, floor_db: float = -40.0) -> np.ndarray:
    """Cut leading and trailing audio more than `floor_db` below the loudest 10 ms."""
    frame = 160
    n = samples.size // frame
    if n == 0:
        return samples
    energy = (samples[:n * frame].reshape(n, frame) ** 2).mean(1) + 1e-12
    loud = np.flatnonzero(10 * np.log10(energy / energy.max()) > floor_db)
    return samples[loud[0] * frame:(loud[-1] + 1) * frame]


def place(word: np.ndarray, rng: np.random.Generator, n_samples: int = 16000) -> np.ndarray:
    word = word[:n_samples]
    clip = np.zeros(n_samples, np.float32)
    start = int(rng.integers(0, n_samples - word.size + 1))
    clip[start:start + word.size] = word / (np.abs(word).max() + 1e-9) * rng.uniform(0.1, 0.9)
    return clip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--per-command", type=int, default=40)   # docs/ACCURACY.md row 11
    parser.add_argument("--per-other", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    jobs = [(w, args.per_command) for w in COMMANDS] + [(w, args.per_other) for w in OTHER_WORDS]
    jobs = [(word, count) for word, count in jobs if count > 0]
    with tempfile.TemporaryDirectory() as tmp:
        for word, count in jobs:
            folder = out / word
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                voice, variant = VOICES[rng.integers(len(VOICES))], VARIANTS[rng.integers(len(VARIANTS))]
                pitch, speed = int(rng.integers(20, 80)), int(rng.integers(120, 220))
                samples = trim(synthesize(word, voice, variant, pitch, speed, Path(tmp)))
                sf.write(folder / f"synth_{voice}_{variant or 'default'}_{pitch}_{speed}_{i}.wav",
                         place(samples, rng), 16000, subtype="PCM_16")
        print(f"wrote {sum(c for _, c in jobs)} clips of {len(jobs)} words to {out}")


if __name__ == "__main__":
    main()
