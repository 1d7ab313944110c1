"""The frontend configuration: the single source of truth for sample rate and framing.

It is saved inside every model checkpoint; everything that runs a model reads it from there.
"""
from __future__ import annotations

import math
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
    """The defaults are the shipped models' frontend, that of ../shared/data/speech_commands_logmel (its
    README, "What a pixel is"): 30 ms periodic-Hann frames every 10 ms, FFT 512, 40 HTK mel bands
    0-4000 Hz, and the least-squares pixel fit over its 400 calibration pairs, pixel = 0.998 x
    10 ln(P + e^-14.5) + 146.37 clipped at 0. A wav through this frontend and a clip's image are the
    same numbers. `legacy_v4()` is the frontend of the models up to v4."""
    sample_rate_hz: int = 16000
    window_ms: float = 30.0
    hop_ms: float = 10.0
    n_fft: int = 512
    n_mels: int = 40
    f_min_hz: float = 0.0
    f_max_hz: float = 4000.0
    # Added to the mel power before the log, so digital silence gives a finite floor.
    log_floor: float = math.exp(-14.5)
    # features = log_scale * ln(mel power + log_floor) + log_offset, then clipped below at
    # feature_floor (None: no clip).
    log_scale: float = 9.98
    log_offset: float = 146.37
    feature_floor: float | None = 0.0
    # Length of one training/classification clip (Speech Commands clips are 1 s).
    clip_ms: float = 1000.0

    @classmethod
    def legacy_v4(cls) -> "FrontendConfig":
        """The frontend of the models up to v4: 25 ms frames, 20-7600 Hz, the natural log of the power."""
        return cls(window_ms=25.0, f_min_hz=20.0, f_max_hz=7600.0, log_floor=1e-6, log_scale=1.0,
                   log_offset=0.0, feature_floor=None)

    @classmethod
    def speech_commands_images(cls) -> "FrontendConfig":
        """The log-mel image set's frontend: the default (named where the images are the point)."""
        return cls()

    @classmethod
    def from_dict(cls, values: dict) -> "FrontendConfig":
        """A config.json from before v5 lists only the fields v4 had: the others are v4's values."""
        if "log_scale" not in values:
            values = {**cls.legacy_v4().to_dict(), **values}
        return super().from_dict(values)

    @property
    def silence_feature(self) -> float:
        """The feature value of digital silence (what zero-padded audio gives)."""
        value = self.log_scale * math.log(self.log_floor) + self.log_offset
        return value if self.feature_floor is None else max(value, self.feature_floor)

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
