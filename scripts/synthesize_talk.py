"""Synthetic running speech ("talk") from Debian's offline English voices, for false-alarm training and
measurement. Nothing is downloaded: the voices and the text come from apt packages.

    .venv/bin/python scripts/synthesize_talk.py --out runs/talk_synth [--minutes 60 10 60] [--seed 0]

Writes `OUT/{train,validation,test}/<engine>-<voice>-<n>.wav` (16 kHz mono int16), each file 15-30 s
of several sentences with short pauses, at a random level, pitch and rate. The three splits share no
sentence (split by a hash of the text) and no voice: the test split is spoken only by voices that
neither training nor any choice hears (festival's kal diphone voice, flite's slt, and three espeak-ng
variants), so false alarms measured on it are on voices and sentences never used.

Text: the sentences of the `fortunes` package (quotations, English prose); a third of them get a
near-miss of a command word inserted ("stopwatch", "nobody", "goal", "upload", ...). Command words
inside sentences stay where the text has them: under the isolation rule (a command follows a pause)
a command inside a sentence is talk, not a command. Reverberation and noise are not added here:
training adds them to the features (audio/augment.py), and the measurement is on clean speech.

Needs: apt-get install espeak-ng flite festival festvox-kallpc16k fortunes
"""
from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from audio.io import read_audio  # noqa: E402

FORTUNES = Path("/usr/share/games/fortunes")
FORTUNE_FILES = ("fortunes", "literature", "wisdom", "people", "science", "work", "politics", "education",
                 "food", "humorists", "miscellaneous", "computers", "pets", "platitudes", "law", "men-women",
                 "goedel", "love", "medicine", "magic", "paradoxum", "riddles", "songs-poems", "sports")
NEAR_MISSES = {
    "yes": "yesterday yet yellow guess less chess yeast",
    "no": "nobody nose know notice nope snow noon",
    "up": "upload upon cup supper pub update upper",
    "down": "downtown download town brown gown sound downstairs",
    "left": "leftover lift theft loft lefty cleft",
    "right": "bright write night fright ride rice light",
    "on": "only online honest upon own gone lawn",
    "off": "often office offer cough awful coffee",
    "stop": "stopwatch stock step shop top stomp stopper",
    "go": "goal goat ghost grow go-kart gold dough",
}
NEAR_WORDS = [w for words in NEAR_MISSES.values() for w in words.split()]
ESPEAK_VOICES = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
                 "en-us-nyc")
ESPEAK_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "f5", "Andy", "Annie", "Belinda",
                   "David", "Ed", "Gene", "Jacky", "John", "Lee", "Linda", "Max", "Michael", "Mike", "Paul",
                   "Robert", "Steph", "Zac", "anika", "grandpa")
ESPEAK_TEST_VARIANTS = ("f4", "m7", "Alicia")       # never in training or validation
FLITE_TRAIN = ("kal16", "awb", "rms")
FLITE_VALIDATION = ("kal",)
FLITE_TEST = ("slt",)
SPLITS = ("train", "validation", "test")


def sentences() -> list[str]:
    """Every fortune split into sentences of 4-30 words, ASCII letters and punctuation only."""
    out = []
    for name in FORTUNE_FILES:
        path = FORTUNES / name
        if not path.exists():
            continue
        for fortune in path.read_text(errors="ignore").split("\n%\n"):
            text = re.sub(r"\s+", " ", fortune.replace("--", " ")).strip()
            for sentence in re.split(r"(?<=[.!?])\s+", text):
                if re.fullmatch(r"[A-Za-z ,.;:'!?\-\"]+", sentence) and 4 <= len(sentence.split()) <= 30:
                    out.append(sentence)
    return sorted(set(out))


def split_of(sentence: str) -> str:
    h = int(hashlib.sha1(sentence.encode()).hexdigest()[:8], 16) % 10
    return "validation" if h == 0 else "test" if h == 1 else "train"


def voices(split: str) -> list[tuple[str, str]]:
    if split == "test":
        return ([("espeak", f"{v}+{variant}") for v in ESPEAK_VOICES for variant in ESPEAK_TEST_VARIANTS]
                + [("flite", v) for v in FLITE_TEST] + [("festival", "kal_diphone")] * 8)
    variants = [v for i, v in enumerate(ESPEAK_VARIANTS) if (i % 6 == 0) == (split == "validation")]
    espeak = [("espeak", f"{v}+{variant}" if variant else v) for v in ESPEAK_VOICES for variant in variants]
    return espeak + [("flite", v) for v in (FLITE_VALIDATION if split == "validation" else FLITE_TRAIN)] * 6


def speak(engine: str, voice: str, text: str, pitch: float, rate: float, workdir: Path) -> np.ndarray:
    """One utterance at 16 kHz. `pitch` and `rate` are factors around the voice's own (1 = as is)."""
    wav = workdir / "u.wav"
    if engine == "espeak":
        cmd = ["espeak-ng", "-v", voice, "-p", str(int(50 * pitch)), "-s", str(int(165 * rate)), "-w", str(wav), text]
    elif engine == "flite":
        cmd = ["flite", "-voice", voice, "--setf", f"duration_stretch={1 / rate:.2f}",
               "--setf", f"int_f0_target_mean={int(110 * pitch) if voice != 'slt' else int(170 * pitch)}",
               "-t", text, "-o", str(wav)]
    else:
        script = workdir / "u.txt"
        script.write_text(text)
        cmd = ["text2wave", "-eval", f"(voice_{voice})", "-eval",
               f"(Parameter.set 'Duration_Stretch {1 / rate:.2f})", str(script), "-o", str(wav)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return read_audio(wav, 16000)


def make_file(job) -> float:
    """Writes one file; returns its length in seconds."""
    path, engine, voice, texts, seed = job
    rng = np.random.default_rng(seed)
    pitch, rate = rng.uniform(0.8, 1.25), rng.uniform(0.8, 1.25)
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for text in texts:
            parts.append(speak(engine, voice, text, pitch, rate, Path(tmp)))
            parts.append(np.zeros(int(16000 * rng.uniform(0.15, 0.8)), np.float32))
    samples = np.concatenate(parts)
    peak_db = rng.uniform(-30.0, -3.0)
    samples = samples / (np.abs(samples).max() + 1e-9) * 10 ** (peak_db / 20)
    sf.write(path, (samples * 32767).astype(np.int16), 16000, subtype="PCM_16")
    return samples.size / 16000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--minutes", type=float, nargs=3, default=(60.0, 10.0, 60.0),
                        metavar=("TRAIN", "VALIDATION", "TEST"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    all_sentences = sentences()
    if not all_sentences:
        print("no sentences: apt-get install fortunes", file=sys.stderr)
        return 1
    rng = np.random.default_rng(args.seed)
    for split, minutes in zip(SPLITS, args.minutes):
        pool = [s for s in all_sentences if split_of(s) == split]
        speakers = voices(split)
        out = Path(args.out) / split
        out.mkdir(parents=True, exist_ok=True)
        # About 2.6 words a second: ~60 words a file of ~23 s.
        n_files = max(1, int(minutes * 60 / 23))
        jobs = []
        for i in range(n_files):
            engine, voice = speakers[rng.integers(len(speakers))]
            texts, n_words = [], 0
            while n_words < 60:
                text = pool[rng.integers(len(pool))]
                if rng.random() < 1 / 3:
                    words = text.split()
                    words.insert(int(rng.integers(0, len(words) + 1)), NEAR_WORDS[rng.integers(len(NEAR_WORDS))])
                    text = " ".join(words)
                texts.append(text)
                n_words += len(text.split())
            name = f"{engine}-{voice.replace('+', '_')}-{i:04d}.wav"
            jobs.append((out / name, engine, voice, texts, int(rng.integers(1 << 31))))
        with ProcessPoolExecutor(args.workers) as pool_exec:
            seconds = sum(pool_exec.map(make_file, jobs))
        print(f"{split}: {len(jobs)} files, {seconds / 60:.1f} min, {len(pool)} sentences to draw from")
    return 0


if __name__ == "__main__":
    sys.exit(main())
