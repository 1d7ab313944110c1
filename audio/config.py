"""The frontend configuration: the single source of truth for sample rate and framing.

It is saved inside every model checkpoint; everything that runs a model reads it from there.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields


class DictConfig:
    """JSON round trip for the frozen config dataclasses stored in a checkpoint's config.json."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        """Missing keys take their defaults; unknown keys are an error (a newer or damaged file)."""
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.__name__} settings: {sorted(unknown)}")
        return cls(**values)


@dataclass(frozen=True)
class FrontendConfig(DictConfig):
    sample_rate_hz: int = 16000
    window_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    n_mels: int = 40
    f_min_hz: float = 20.0
    f_max_hz: float = 7600.0
    # Added to the mel power before the log, so digital silence gives a finite floor.
    log_floor: float = 1e-6
    # Length of one training/classification clip (Speech Commands clips are 1 s).
    clip_ms: float = 1000.0

    @property
    def window_samples(self) -> int:
        return int(round(self.sample_rate_hz * self.window_ms / 1000.0))

    @property
    def hop_samples(self) -> int:
        return int(round(self.sample_rate_hz * self.hop_ms / 1000.0))

    @property
    def clip_samples(self) -> int:
        return int(round(self.sample_rate_hz * self.clip_ms / 1000.0))

    def n_frames(self, n_samples: int) -> int:
        """Frames produced by `n_samples` samples (center=False framing)."""
        if n_samples < self.window_samples:
            return 0
        return 1 + (n_samples - self.window_samples) // self.hop_samples
