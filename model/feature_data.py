"""Clips as features in memory: Speech Commands folders of wavs and of log-mel images meet here.

A folder in the Speech Commands layout holds either audio clips (`yes/*.wav`) or the log-mel images
of ../shared/data/speech_commands_logmel (`yes/*.jpg`, one 98 x 40 uint8 JPEG per clip: row = frame,
column = mel band). Wav clips go through the model's frontend; an image's pixels *are* that frontend's
features when the frontend is `FrontendConfig.speech_commands_images()` (the calibrated pixel
mapping). Both end up as one float16 array [clip, frame, mel], so one batch maker serves both
(47k clips take ~370 MB).
"""
from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audio.augment import to_power
from audio.config import FrontendConfig
from audio.features import LogMel
from audio.io import AUDIO_SUFFIXES
from model import data
from model.labels import LABELS, SILENCE

IMAGE_SUFFIXES = (".jpg", ".jpeg")
IMAGE_SILENCE_DIR = "_silence_"     # the image set's noise crops (training clips: no list names them)
# What a frontend must share with the images for their pixels to be its features.
_IMAGE_FRONTEND = FrontendConfig.speech_commands_images()


@dataclass
class FeatureSet:
    """feats [N, n_frames, n_mels] float16, labels [N] int64, from_image [N] bool."""
    feats: np.ndarray
    labels: np.ndarray
    from_image: np.ndarray
    paths: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def empty_set(frontend: FrontendConfig) -> FeatureSet:
    n_frames = frontend.n_frames(frontend.clip_samples)
    return FeatureSet(np.zeros((0, n_frames, frontend.n_mels), np.float16), np.zeros(0, np.int64),
                      np.zeros(0, bool), [])


def concat(*sets: FeatureSet) -> FeatureSet:
    return FeatureSet(np.concatenate([s.feats for s in sets]), np.concatenate([s.labels for s in sets]),
                      np.concatenate([s.from_image for s in sets]), [p for s in sets for p in s.paths])


def is_image_folder(root: str | Path) -> bool:
    """True when the folder's word folders hold log-mel images rather than audio."""
    root = Path(root)
    for word_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
        for clip in word_dir.iterdir():
            if clip.suffix.lower() in IMAGE_SUFFIXES:
                return True
            if clip.suffix.lower() in AUDIO_SUFFIXES:
                return False
    return False


def check_image_frontend(frontend: FrontendConfig) -> None:
    if frontend != _IMAGE_FRONTEND:
        raise data.DatasetError("log-mel image folders need the images' frontend "
                                "(FrontendConfig.speech_commands_images(); this model's frontend differs)")


def wav_features(waves: np.ndarray, frontend: FrontendConfig, batch_size: int = 512) -> np.ndarray:
    """int16 clips [N, n_samples] -> features [N, n_frames, n_mels] float16."""
    log_mel = LogMel(frontend)
    n_frames = frontend.n_frames(waves.shape[1])
    out = np.zeros((len(waves), n_frames, frontend.n_mels), np.float16)
    with torch.inference_mode():
        for start in range(0, len(waves), batch_size):
            batch = torch.from_numpy(waves[start:start + batch_size].astype(np.float32) / 32767.0)
            out[start:start + batch_size] = log_mel(batch).numpy()
    return out


def read_image(path: Path, frontend: FrontendConfig) -> np.ndarray:
    """One log-mel image -> [n_frames, n_mels] uint8. Raises ValueError for an unreadable or
    wrongly shaped image."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L"))
    except Exception as exc:   # PIL raises several types (UnidentifiedImageError, OSError, ...)
        raise ValueError(f"{path}: not a readable image ({type(exc).__name__})") from None
    want = (frontend.n_frames(frontend.clip_samples), frontend.n_mels)
    if pixels.shape != want:
        raise ValueError(f"{path}: image is {pixels.shape[0]}x{pixels.shape[1]}, expected {want[0]}x{want[1]}")
    return pixels


def load_image_clips(root: str | Path, items: list[tuple[str, str]], frontend: FrontendConfig,
                     progress=None) -> tuple[FeatureSet, int]:
    """Image clips -> (features, number of images that could not be read)."""
    check_image_frontend(frontend)
    root = Path(root)

    def read(item):
        try:
            return read_image(root / item[0], frontend)
        except ValueError:
            return None

    kept, labels, paths = [], [], []
    with ThreadPoolExecutor(max_workers=4) as pool:
        for item, pixels in zip(items, pool.map(read, items, chunksize=256)):
            if progress is not None:
                progress.update(1)
            if pixels is None:
                continue
            kept.append(pixels)
            labels.append(LABELS.index(item[1]))
            paths.append(item[0])
    if not kept:
        return empty_set(frontend), len(items)
    return (FeatureSet(np.stack(kept).astype(np.float16), np.array(labels, np.int64), np.ones(len(kept), bool),
                       paths), len(items) - len(kept))


def load_wav_clips(root: str | Path, items: list[tuple[str, str]], frontend: FrontendConfig,
                   progress=None) -> tuple[FeatureSet, int]:
    """Audio clips -> (features, number of files that could not be read)."""
    clips = data.load_clips(root, items, frontend, progress)
    if not len(clips):
        return empty_set(frontend), len(items)
    return (FeatureSet(wav_features(clips.waves, frontend), clips.labels, np.zeros(len(clips), bool), clips.paths),
            len(items) - len(clips))


@dataclass
class DataFolder:
    """A Speech Commands folder: its kind and its clips by split."""
    root: Path
    is_image: bool
    splits: dict[str, list[tuple[str, str]]]

    @property
    def name(self) -> str:
        return self.root.name

    def load(self, items, frontend: FrontendConfig, progress=None) -> tuple[FeatureSet, int]:
        loader = load_image_clips if self.is_image else load_wav_clips
        return loader(self.root, items, frontend, progress)

    def silence_items(self) -> list[tuple[str, str]]:
        """The image set's `_silence_` crops (training clips); wav folders make silence from noise."""
        folder = self.root / IMAGE_SILENCE_DIR
        if not self.is_image or not folder.is_dir():
            return []
        return [(f"{IMAGE_SILENCE_DIR}/{p.name}", SILENCE) for p in sorted(folder.iterdir())
                if p.suffix.lower() in IMAGE_SUFFIXES]


def open_folder(root: str | Path) -> DataFolder:
    """Lists a folder's clips by split (raises DatasetError when it is not in the layout)."""
    root = Path(root)
    if not root.is_dir():
        raise data.DatasetError(f"data folder {root} does not exist")
    is_image = is_image_folder(root)
    splits = data.list_splits(root, IMAGE_SUFFIXES if is_image else AUDIO_SUFFIXES)
    return DataFolder(root, is_image, splits)


def eval_features(folder: DataFolder, split: str, frontend: FrontendConfig, progress=None) -> tuple[FeatureSet, int]:
    """A split as evaluated everywhere in this project: a wav folder's word clips plus its silence
    clips (from the held-out region of its noise recordings, seed 0); an image folder's word clips
    (the image set has no held-out noise to make evaluation silence from)."""
    words, n_bad = folder.load(folder.splits[split], frontend, progress)
    if folder.is_image:
        return words, n_bad
    noises = data.load_noise(folder.root, frontend)
    silence = data.silence_clips(noises, split, data.n_silence_clips(len(words)), frontend, 0)
    silence_set = FeatureSet(wav_features(silence.waves, frontend), silence.labels, np.zeros(len(silence), bool),
                             silence.paths)
    return concat(words, silence_set), n_bad


def warn_unreadable(n_bad: int, n_total: int, where: str) -> None:
    if n_bad:
        print(f"warning: {n_bad} of {n_total} clips in {where} could not be read; going on without them",
              file=sys.stderr)


class NoiseBank:
    """Background noise as mel band power, for adding noise to features and making `_silence_`.

    Two sources: the wav folders' `_background_noise_` recordings (their training region only) and
    the image set's `_silence_` crops. Every entry is scaled to the band power of full-scale (RMS 1)
    white noise, so a level in dB below that is a level in dBFS, as the waveform loaders had it."""

    def __init__(self, entries: list[list[torch.Tensor]], frontend: FrontendConfig):
        self.groups = [g for g in entries if g]
        if not self.groups:
            raise data.DatasetError("no noise to make _silence_ examples from: give a wav folder with "
                                    f"{data.NOISE_DIR}/ or an image folder with {IMAGE_SILENCE_DIR}/")
        self.frontend = frontend

    @classmethod
    def from_folders(cls, folders: list[DataFolder], frontend: FrontendConfig, image_silence: FeatureSet | None = None):
        from audio.mel import mel_weights, periodic_hann
        reference = float((periodic_hann(frontend.window_samples) ** 2).sum() * mel_weights(frontend).sum())
        recordings, crops = [], []
        for folder in folders:
            if folder.is_image:
                continue
            for noise in data.load_noise(folder.root, frontend):
                region = data.noise_region(noise, "train")
                waves = data.to_int16(region / max(1e-9, float(np.abs(region).max())))[None]
                power = to_power(torch.from_numpy(wav_features(waves, frontend)[0]).float(), frontend)
                recordings.append(power)
        if image_silence is not None and len(image_silence):
            for feats in image_silence.feats:
                crops.append(to_power(torch.from_numpy(feats).float(), frontend))
        scaled = [[p * (reference / p.sum(-1).mean().clamp_min(1e-20)) for p in group] for group in (recordings, crops)]
        return cls(scaled, frontend)

    def sample(self, batch: int, n_frames: int, gen: torch.Generator) -> torch.Tensor:
        """[batch, n_frames, mel] band power: a random stretch of a random entry of a random source."""
        out = torch.zeros(batch, n_frames, self.frontend.n_mels)
        for i in range(batch):
            group = self.groups[int(torch.randint(len(self.groups), (1,), generator=gen))]
            entry = group[int(torch.randint(len(group), (1,), generator=gen))]
            start = int(torch.randint(max(1, entry.shape[0] - n_frames + 1), (1,), generator=gen))
            piece = entry[start:start + n_frames]
            out[i, :piece.shape[0]] = piece
        return out
