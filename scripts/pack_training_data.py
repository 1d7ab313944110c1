"""Pack the shipped model's training data small enough to copy to a remote (GPU) machine.

    .venv/bin/python scripts/pack_training_data.py .devdata [--data ../shared/data]

Writes, as 16 kHz mono 16-bit FLAC (the word clips lossless: training reads the same samples as from the WAVs):
  OUT/speech_commands/   the train and validation clips of DATA/speech_commands in the same layout, plus
                         `_background_noise_`. Test-speaker clips are left out, so `list_splits` gives an
                         empty test split. `validation_list.txt` and `testing_list.txt` are copied with
                         each clip's `.wav` renamed `.flac` (the file names they must match); nothing else
                         in them changes.
                         The noise files are the only lossy part, to fit the 64 MiB a remote call may
                         carry (lossless, the pack is ~61 MB; this saves ~3.5 MB): the last 10% of each
                         file (the test split's silence region, NOISE_REGIONS) is zeroed (same length, so
                         the train and validation regions stay where they are), and low bits are dropped
                         while the rounding error stays --noise-headroom-db (40) under the file's quietest
                         second (0 to 8 bits; FLAC stores the dropped bits for free). Noise is mixed in
                         at 0-30 dB SNR or rescaled to -70..-20 dBFS, so an error 40 dB under the noise
                         itself is far below anything training can tell apart. --lossless-noise keeps
                         every bit.
  OUT/extra_unknown/     the extra `_unknown_` crops that `load_extra_unknown` takes for the shipped
                         recipe (scripts/train_shipped_model.sh: fsdd, precise not-wake-words, the first 60
                         sorted coffee orders; --extra-unknown-share 0.25; seed 0), one 1 s file each.
                         Train on it with `--extra-unknown OUT/extra_unknown --extra-unknown-share 0.25`:
                         each file is one whole clip, so that path yields all of them (in a seed-dependent
                         order). Their samples are stored so that read_audio + to_int16 gives back exactly
                         the int16 crop (libsndfile reads PCM_16 as x / 32768, to_int16 multiplies by 32767),
                         except a sample at +32767, which comes back as 32766.
  OUT/MANIFEST.json      counts and sources.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audio.config import FrontendConfig  # noqa: E402
from audio.io import AUDIO_SUFFIXES, read_audio  # noqa: E402
from model import data  # noqa: E402
from model.train import load_extra_unknown  # noqa: E402

EXTRA_UNKNOWN_SHARE = 0.25  # the shipped recipe's --extra-unknown-share
N_COFFEE_TRAIN = 60         # the first 60 sorted coffee orders are training speech (train_shipped_model.sh)


def write_flac(path: Path, samples: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, rate, format="FLAC", subtype="PCM_16", compression_level=1.0)


def flac_name(name: str) -> str:
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}.flac" if dot and f".{suffix.lower()}" in AUDIO_SUFFIXES else name


def quantize_noise(samples: np.ndarray, headroom_db: float) -> tuple[np.ndarray, int]:
    """Drop the low bits of int16 noise while the rounding error (step / sqrt(12)) stays `headroom_db`
    under the RMS of its quietest whole second -> (samples, bits dropped)."""
    x = samples.astype(np.int64)
    n = x.size // 16000
    quietest = float(np.sqrt((x[:n * 16000].reshape(n, 16000) ** 2).mean(1)).min()) if n else 0.0
    bits = 0
    while bits < 8 and quietest > 0 and 20 * np.log10(quietest / (2 ** (bits + 1) / np.sqrt(12))) >= headroom_db:
        bits += 1
    step = 2 ** bits
    # Clip to a multiple of the step too, or one sample at 32767 would keep FLAC from seeing the wasted bits.
    return np.clip(np.round(x / step) * step, -32768, 32768 - step).astype(np.int16), bits


def pack_speech_commands(src: Path, dst: Path, noise_headroom_db: float | None) -> dict:
    test = {line.strip() for line in (src / "testing_list.txt").read_text().splitlines() if line.strip()}
    for name in ("validation_list.txt", "testing_list.txt"):
        lines = [flac_name(line.strip()) for line in (src / name).read_text().splitlines() if line.strip()]
        (dst / name).write_text("\n".join(lines) + "\n")
    for name in ("LICENSE", "SOURCE.md", "COUNTS.json"):
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    kept = skipped = 0
    for word_dir in sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith("_")):
        for clip in sorted(word_dir.iterdir()):
            if clip.suffix.lower() not in AUDIO_SUFFIXES:
                continue
            if f"{word_dir.name}/{clip.name}" in test:
                skipped += 1
                continue
            samples, rate = sf.read(str(clip), dtype="int16")
            if samples.ndim != 1 or rate != 16000:
                raise SystemExit(f"{clip}: expected 16 kHz mono, got {rate} Hz {samples.shape}")
            write_flac(dst / word_dir.name / flac_name(clip.name), samples, rate)
            kept += 1
    noise_src, noise_dst = src / data.NOISE_DIR, dst / data.NOISE_DIR
    noise_dst.mkdir(parents=True, exist_ok=True)
    noises = []
    for path in sorted(noise_src.iterdir()):
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            if path.is_file():
                shutil.copyfile(path, noise_dst / path.name)
            continue
        samples, rate = sf.read(str(path), dtype="int16")
        if samples.ndim != 1 or rate != 16000:
            raise SystemExit(f"{path}: expected 16 kHz mono, got {rate} Hz {samples.shape}")
        bits = 0
        if noise_headroom_db is not None:
            samples = samples.copy()
            test_start = int(data.NOISE_REGIONS["test"][0] * samples.size)
            samples[:test_start], bits = quantize_noise(samples[:test_start], noise_headroom_db)
            samples[test_start:] = 0
        write_flac(noise_dst / flac_name(path.name), samples, rate)
        noises.append({"file": path.name, "low_bits_dropped": bits})
    return {"clips": kept, "test_clips_left_out": skipped, "noise_files": noises,
            "noise": "lossless" if noise_headroom_db is None else
                     f"test region zeroed; rounding error >= {noise_headroom_db:g} dB under the quietest second"}


def stored_samples(crop: np.ndarray) -> np.ndarray:
    """int16 to write so that read_audio (x / 32768) then data.to_int16 (* 32767, rounded) gives `crop`."""
    return np.clip(np.round(crop.astype(np.float64) * (32768.0 / 32767.0)), -32768, 32767).astype(np.int16)


def pack_extra_unknown(data_root: Path, coffee_dir: Path | None, cap: int, dst: Path, seed: int) -> dict:
    frontend = FrontendConfig()
    with tempfile.TemporaryDirectory() as tmp:
        if coffee_dir is None:
            # What train_shipped_model.sh puts in runs/coffee_train: links to the first 60 sorted orders.
            coffee_dir = Path(tmp) / "coffee_train"
            coffee_dir.mkdir()
            for order in sorted((data_root / "coffee_orders").glob("*.wav"))[:N_COFFEE_TRAIN]:
                os.symlink(order.resolve(), coffee_dir / order.name)
        paths = [str(data_root / "fsdd" / "recordings"),
                 str(data_root / "precise_community" / "not-wake-words" / "en"), str(coffee_dir)]
        # train() draws the crops from np.random.default_rng(seed) before using that generator for
        # anything else (without --max-clips), so seed S gives the crops of `train --seed S` (v4, the
        # last model trained from this pack, used seed 1).
        extra = load_extra_unknown(paths, frontend, cap, np.random.default_rng(seed))
    dst.mkdir(parents=True, exist_ok=True)
    mismatched, worst = 0, 0
    for i, crop in enumerate(extra.waves):
        path = dst / f"extra-unknown-{i:04d}.flac"
        write_flac(path, stored_samples(crop), frontend.sample_rate_hz)
        back = data.to_int16(data.fit_length(read_audio(path, frontend.sample_rate_hz), frontend.clip_samples))
        mismatched += int(not np.array_equal(back, crop))
        worst = max(worst, int(np.abs(back.astype(np.int32) - crop).max()))
    # Only a sample at +32767 cannot come back exactly (it reads back as 32766).
    return {"paths": paths, "cap": cap, "seed": seed, "crops": len(extra), "crops_not_bit_exact": mismatched,
            "largest_sample_error": worst}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder to create (e.g. .devdata); replaced if it exists")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parent.parent.parent / "shared" / "data"),
                        help="the shared data folder (default: ../shared/data)")
    parser.add_argument("--coffee-train", default="runs/coffee_train",
                        help="folder of the training coffee orders (made from DATA/coffee_orders if missing)")
    parser.add_argument("--seed", type=int, default=0, help="the seed whose extra-unknown crops to take")
    parser.add_argument("--noise-headroom-db", type=float, default=40.0,
                        help="drop noise bits while the rounding error stays this far under the quietest second")
    parser.add_argument("--lossless-noise", action="store_true", help="keep the noise files bit for bit (~61 MB pack)")
    args = parser.parse_args()

    data_root, out = Path(args.data), Path(args.out)
    src = data_root / "speech_commands"
    coffee = Path(args.coffee_train) if Path(args.coffee_train).is_dir() else None
    if coffee is not None:
        expected = [p.name for p in sorted((data_root / "coffee_orders").glob("*.wav"))[:N_COFFEE_TRAIN]]
        if sorted(p.name for p in coffee.iterdir()) != expected:
            raise SystemExit(f"{coffee} is not the first {N_COFFEE_TRAIN} sorted coffee orders")
    if out.exists():
        shutil.rmtree(out)
    (out / "speech_commands").mkdir(parents=True)

    source_splits = data.list_splits(src)
    manifest = {"source": str(src.resolve()),
                "source_clips": {s: len(v) for s, v in source_splits.items()}}
    manifest["speech_commands"] = pack_speech_commands(src, out / "speech_commands",
                                                      None if args.lossless_noise else args.noise_headroom_db)
    cap = int(EXTRA_UNKNOWN_SHARE * len(source_splits["train"]))
    manifest["extra_unknown"] = pack_extra_unknown(data_root, coffee, cap, out / "extra_unknown", args.seed)

    packed = data.list_splits(out / "speech_commands")
    manifest["packed_clips"] = {s: len(v) for s, v in packed.items()}
    for split in ("train", "validation"):
        if [(Path(p).with_suffix("").as_posix(), label) for p, label in packed[split]] != \
                [(Path(p).with_suffix("").as_posix(), label) for p, label in source_splits[split]]:
            raise SystemExit(f"packed {split} split differs from the source's")
    if packed["test"]:
        raise SystemExit("packed data has test clips")
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(json.dumps(manifest, indent=1))
    print(f"{out}: {size / 1e6:.1f} MB in files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
