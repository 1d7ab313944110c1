"""Speech Commands layout: word folders, `validation_list.txt`, `testing_list.txt`, `_background_noise_`.

Clips listed in neither list are training clips. Words outside the 10 commands are `_unknown_`.
`_silence_` examples are cut from the background-noise files: the first 80% of each file serves
training, the next 10% validation and the last 10% test, so evaluation silence is audio that training
never heard.
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio.config import FrontendConfig
from audio.io import AUDIO_SUFFIXES, AudioReadError, read_audio
from model.labels import COMMANDS, LABELS, SILENCE, UNKNOWN

NOISE_DIR = "_background_noise_"
SPLITS = ("train", "validation", "test")
NOISE_REGIONS = {"train": (0.0, 0.8), "validation": (0.8, 0.9), "test": (0.9, 1.0)}
# Evaluation silence: one silence clip per this many word clips (Speech Commands uses ~10%).
SILENCE_SHARE = 0.1


class DatasetError(Exception):
    """The data folder is not in the Speech Commands layout."""


@dataclass
class ClipSet:
    """Clips cut or zero-padded to one clip length. waves [N, clip_samples] int16, labels [N] int64."""
    waves: np.ndarray
    labels: np.ndarray
    paths: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def word_to_label(word: str) -> str:
    return word if word in COMMANDS else UNKNOWN


def word_clips(root: Path, suffixes: tuple[str, ...] = AUDIO_SUFFIXES) -> list[tuple[str, str]]:
    """[(relative path, label)] of the clip files (audio, or `suffixes`) in the word folders under `root`."""
    return [(f"{word_dir.name}/{clip.name}", word_to_label(word_dir.name))
            for word_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
            for clip in sorted(word_dir.iterdir()) if clip.suffix.lower() in suffixes]


def list_splits(root: str | Path, suffixes: tuple[str, ...] = AUDIO_SUFFIXES) -> dict[str, list[tuple[str, str]]]:
    """{split: [(relative path, label)]} for the word clips of a Speech Commands folder (audio files,
    or the log-mel images with `suffixes=(".jpg",)`)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"data folder {root} does not exist")
    lists = {}
    for split, name in (("validation", "validation_list.txt"), ("test", "testing_list.txt")):
        list_path = root / name
        if not list_path.is_file():
            raise DatasetError(f"{root} has no {name} (expected the Speech Commands layout)")
        lists[split] = {line.strip() for line in list_path.read_text().splitlines() if line.strip()}
    splits: dict[str, list[tuple[str, str]]] = {s: [] for s in SPLITS}
    for rel, label in word_clips(root, suffixes):
        split = "validation" if rel in lists["validation"] else "test" if rel in lists["test"] else "train"
        splits[split].append((rel, label))
    if not splits["train"]:
        raise DatasetError(f"{root} has no training clips in word folders")
    return splits


def fit_length(samples: np.ndarray, n_samples: int) -> np.ndarray:
    """Zero-pad at the end or cut at the end to exactly n_samples (as Speech Commands loaders do)."""
    if samples.size >= n_samples:
        return samples[:n_samples]
    return np.pad(samples, (0, n_samples - samples.size))


def to_int16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)


def load_clips(root: str | Path, items: list[tuple[str, str]], cfg: FrontendConfig,
               progress=None) -> ClipSet:
    """Read clips into memory as int16 (the full 105k-clip set needs about 3.4 GB)."""
    root = Path(root)

    def read(item):
        try:
            return to_int16(fit_length(read_audio(root / item[0], cfg.sample_rate_hz), cfg.clip_samples))
        except AudioReadError:
            return None

    waves, labels, paths = [], [], []
    with ThreadPoolExecutor(max_workers=4) as pool:
        for item, wave in zip(items, pool.map(read, items)):
            if progress is not None:
                progress.update(1)
            if wave is None:
                continue  # a damaged clip in a 100k-clip download should not stop training
            waves.append(wave)
            labels.append(LABELS.index(item[1]))
            paths.append(item[0])
    return ClipSet(np.stack(waves) if waves else np.zeros((0, cfg.clip_samples), np.int16),
                   np.array(labels, dtype=np.int64), paths)


def load_noise(root: str | Path, cfg: FrontendConfig) -> list[np.ndarray]:
    """The background-noise recordings as float32 arrays at the model rate."""
    noise_dir = Path(root) / NOISE_DIR
    files = sorted(p for p in noise_dir.glob("*") if p.suffix.lower() in AUDIO_SUFFIXES) if noise_dir.is_dir() else []
    if not files:
        raise DatasetError(f"{noise_dir} has no noise recordings (needed to make _silence_ examples)")
    return [read_audio(p, cfg.sample_rate_hz) for p in files]


def noise_region(noise: np.ndarray, split: str) -> np.ndarray:
    start, end = NOISE_REGIONS[split]
    return noise[int(start * noise.size):int(end * noise.size)]


def random_noise_clip(noises: list[np.ndarray], split: str, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """A random stretch of a random noise file's `split` region, at a random level (RMS -70..-20 dBFS)."""
    region = noise_region(noises[rng.integers(len(noises))], split)
    start = rng.integers(0, max(1, region.size - n_samples))
    clip = fit_length(region[start:start + n_samples], n_samples).astype(np.float32)
    rms = float(np.sqrt(np.mean(clip ** 2))) or 1.0
    target_rms = 10.0 ** (rng.uniform(-70.0, -20.0) / 20.0)
    return clip * (target_rms / rms)


def n_silence_clips(n_word_clips: int) -> int:
    return max(1, int(round(SILENCE_SHARE * n_word_clips)))


def silence_clips(noises: list[np.ndarray], split: str, n_clips: int, cfg: FrontendConfig, seed: int) -> ClipSet:
    """Deterministic `_silence_` clips for an evaluation split."""
    # The seed mixes in the split name so validation and test silences differ.
    digest = int(hashlib.sha256(f"{seed}-{split}".encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(digest)
    waves = np.stack([to_int16(random_noise_clip(noises, split, cfg.clip_samples, rng)) for _ in range(n_clips)])
    return ClipSet(waves, np.full(n_clips, LABELS.index(SILENCE), dtype=np.int64),
                   [f"{NOISE_DIR}/{split}-silence-{i}" for i in range(n_clips)])


def concat(*sets: ClipSet) -> ClipSet:
    return ClipSet(np.concatenate([s.waves for s in sets]), np.concatenate([s.labels for s in sets]),
                   [p for s in sets for p in s.paths])


def load_eval_split(root: str | Path, split: str, cfg: FrontendConfig, seed: int = 0, progress=None) -> ClipSet:
    """Word clips of a split plus its silence clips, as evaluated everywhere in this project."""
    items = list_splits(root)[split]
    words = load_clips(root, items, cfg, progress)
    silence = silence_clips(load_noise(root, cfg), split, n_silence_clips(len(words)), cfg, seed)
    return concat(words, silence)
