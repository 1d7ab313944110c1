"""Log-mel maths in numpy, and the streaming framer shared by the numpy and torch frontends.

Framing is center=False: frame k covers samples [k*hop, k*hop + window). A frame is emitted as soon as
its last sample has arrived, which is what lets the recurrent model run one step per hop in real time.

Why numpy here: the window draws the live spectrogram with `NumpyLogMel` while torch is still being
imported (2-3 s on a small machine); the network itself uses `audio/features.py`'s torch `LogMel`, the
same maths (the two agree to float32 rounding, see tests/test_features.py).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from audio.config import FrontendConfig


def mel_weights(cfg: FrontendConfig) -> np.ndarray:
    """Triangular HTK-mel filters, [n_fft // 2 + 1, n_mels] float32."""
    def hz_to_mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def mel_to_hz(mel):
        return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)

    n_bins = cfg.n_fft // 2 + 1
    bin_hz = np.linspace(0.0, cfg.sample_rate_hz / 2.0, n_bins)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(cfg.f_min_hz), hz_to_mel(cfg.f_max_hz), cfg.n_mels + 2))
    lower, center, upper = edges_hz[:-2], edges_hz[1:-1], edges_hz[2:]
    rising = (bin_hz[:, None] - lower[None, :]) / (center - lower)[None, :]
    falling = (upper[None, :] - bin_hz[:, None]) / (upper - center)[None, :]
    return np.clip(np.minimum(rising, falling), 0.0, None).astype(np.float32)


def periodic_hann(n_samples: int) -> np.ndarray:
    """The periodic Hann window (torch.hann_window(n, periodic=True))."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_samples) / n_samples)).astype(np.float32)


def scale_log_mel(ln_mel, cfg: FrontendConfig):
    """Natural-log mel power (numpy or torch) -> the frontend's feature scale, floor applied."""
    if cfg.log_scale != 1.0 or cfg.log_offset != 0.0:
        ln_mel = ln_mel * cfg.log_scale + cfg.log_offset
    if cfg.feature_floor is not None:
        ln_mel = ln_mel.clip(cfg.feature_floor, None)
    return ln_mel


def check_framing(cfg: FrontendConfig) -> None:
    """The one frontend setting that cannot work: a window longer than the FFT."""
    if cfg.window_samples > cfg.n_fft:
        raise ValueError("window_ms is longer than n_fft samples")


class NumpyLogMel:
    """Offline log-mel in numpy: samples [n_samples] -> frames [n_frames, n_mels] float32."""

    def __init__(self, cfg: FrontendConfig):
        check_framing(cfg)
        self.cfg = cfg
        self.window = periodic_hann(cfg.window_samples)
        self.mel = mel_weights(cfg)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        samples = np.ascontiguousarray(samples, np.float32).reshape(-1)
        n_frames = cfg.n_frames(samples.size)
        if n_frames == 0:
            return np.zeros((0, cfg.n_mels), np.float32)
        # as_strided, not sliding_window_view: the same view at a quarter of the call cost, which
        # matters for the streaming recognizer's 100 ms blocks.
        step = samples.strides[0]
        frames = np.lib.stride_tricks.as_strided(samples, (n_frames, cfg.window_samples), (cfg.hop_samples * step, step),
                                                 writeable=False)
        power = np.abs(np.fft.rfft(frames * self.window, n=cfg.n_fft)) ** 2
        return scale_log_mel(np.log(power.astype(np.float32) @ self.mel + np.float32(cfg.log_floor)), cfg)


class StreamingFramer:
    """Chunks of any size in, the same frames as `log_mel` on the whole signal out.

    Keeps the samples that still belong to a future frame (at most window + hop - 1 of them).
    `log_mel` maps samples [n] to frames [n_frames, n_mels] (numpy or torch).
    """

    def __init__(self, cfg: FrontendConfig, log_mel: Callable):
        self.cfg = cfg
        self.log_mel = log_mel
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)

    def process(self, samples: np.ndarray):
        """samples [n] float32 -> new frames [n_new_frames, n_mels]."""
        pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32).reshape(-1)])
        n_frames = self.cfg.n_frames(pending.size)
        hop, window = self.cfg.hop_samples, self.cfg.window_samples
        if n_frames == 0:
            self._pending = pending
            return self.log_mel(pending[:0])
        frames = self.log_mel(pending[: (n_frames - 1) * hop + window])
        self._pending = pending[n_frames * hop:].copy()
        return frames


class NumpyStreamingLogMel(StreamingFramer):
    def __init__(self, cfg: FrontendConfig):
        super().__init__(cfg, NumpyLogMel(cfg))
