"""Reading audio files: any rate, any channel count, one exception type for every failure."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import soxr

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


class AudioReadError(Exception):
    """A file could not be read as audio. The message names the file and the cause."""


def _describe(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    # libsndfile prefixes its messages with the path again; keep only the cause.
    if "Format not recognised" in text or "unknown format" in text.lower():
        return "not a recognised audio format"
    return text.splitlines()[-1]


def to_mono(samples: np.ndarray) -> np.ndarray:
    """[n] or [n, channels] -> [n] float32, channels averaged."""
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    return np.ascontiguousarray(samples, dtype=np.float32)


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    if from_hz == to_hz:
        return samples
    return soxr.resample(samples, from_hz, to_hz, quality="HQ").astype(np.float32, copy=False)


def read_audio(path: str | Path, sample_rate_hz: int) -> np.ndarray:
    """Whole file as mono float32 [n_samples] at `sample_rate_hz`. Raises AudioReadError."""
    path = Path(path)
    if not path.exists():
        raise AudioReadError(f"{path}: file not found")
    if path.is_dir():
        raise AudioReadError(f"{path}: is a folder, not an audio file")
    try:
        samples, file_rate_hz = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises several types (LibsndfileError, RuntimeError, ...)
        raise AudioReadError(f"{path}: {_describe(exc)}") from None
    if samples.shape[0] == 0:
        raise AudioReadError(f"{path}: contains no audio samples")
    if not np.all(np.isfinite(samples)):
        raise AudioReadError(f"{path}: contains invalid (NaN or infinite) samples")
    return resample(to_mono(samples), int(file_rate_hz), sample_rate_hz)


class StreamResampler:
    """Streaming resampler for blocks of any size (soxr keeps the filter state between calls)."""

    def __init__(self, from_hz: int, to_hz: int):
        self.from_hz, self.to_hz = int(from_hz), int(to_hz)
        self._soxr = None if self.from_hz == self.to_hz else soxr.ResampleStream(
            self.from_hz, self.to_hz, 1, dtype="float32", quality="HQ")

    def process(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self._soxr is None:
            return samples
        return self._soxr.resample_chunk(samples, last=last)


def iter_audio_blocks(path: str | Path, sample_rate_hz: int, block_ms: float = 1000.0) -> Iterator[np.ndarray]:
    """Mono float32 blocks of a file of any length at `sample_rate_hz`; memory stays flat.

    Raises AudioReadError (also mid-file, for a truncated file).
    """
    path = Path(path)
    if not path.exists():
        raise AudioReadError(f"{path}: file not found")
    try:
        handle = sf.SoundFile(str(path))
    except Exception as exc:
        raise AudioReadError(f"{path}: {_describe(exc)}") from None
    with handle:
        if handle.frames == 0:
            raise AudioReadError(f"{path}: contains no audio samples")
        resampler = StreamResampler(handle.samplerate, sample_rate_hz)
        block_frames = max(1, int(handle.samplerate * block_ms / 1000.0))
        while True:
            try:
                block = handle.read(block_frames, dtype="float32", always_2d=True)
            except Exception as exc:
                raise AudioReadError(f"{path}: {_describe(exc)}") from None
            last = block.shape[0] < block_frames
            out = resampler.process(to_mono(block), last=last)
            if out.size:
                yield out
            if last:
                return


def find_audio_files(paths: list[str | Path]) -> list[Path]:
    """Expand folders recursively into audio files (sorted); plain paths are kept as given."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()))
        else:
            found.append(path)
    return found
