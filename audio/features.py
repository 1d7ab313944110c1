"""Log-mel features: one offline function and a streaming class that emits exactly the same frames.

Framing is center=False: frame k covers samples [k*hop, k*hop + window). A frame is emitted as soon as
its last sample has arrived, which is what lets the recurrent model run one step per hop in real time.
"""
from __future__ import annotations

import numpy as np
import torch

from audio.config import FrontendConfig


def mel_filterbank(cfg: FrontendConfig) -> torch.Tensor:
    """Triangular HTK-mel filters, [n_fft // 2 + 1, n_mels]."""
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
    weights = np.clip(np.minimum(rising, falling), 0.0, None)
    return torch.from_numpy(weights.astype(np.float32))


class LogMel:
    """Offline log-mel: samples [..., n_samples] -> frames [..., n_frames, n_mels] (float32)."""

    def __init__(self, cfg: FrontendConfig):
        if cfg.window_samples > cfg.n_fft:
            raise ValueError("window_ms is longer than n_fft samples")
        self.cfg = cfg
        self.window = torch.hann_window(cfg.window_samples, periodic=True)
        self.mel = mel_filterbank(cfg)

    def __call__(self, samples: torch.Tensor | np.ndarray) -> torch.Tensor:
        samples = torch.as_tensor(samples, dtype=torch.float32)
        cfg = self.cfg
        if samples.shape[-1] < cfg.window_samples:
            return samples.new_zeros(*samples.shape[:-1], 0, cfg.n_mels)
        frames = samples.unfold(-1, cfg.window_samples, cfg.hop_samples)  # [..., T, window]
        power = torch.fft.rfft(frames * self.window, n=cfg.n_fft).abs().square()
        return torch.log(power @ self.mel + cfg.log_floor)


class StreamingLogMel:
    """Chunks of any size in, the same frames as `LogMel` on the whole signal out.

    Keeps the samples that still belong to a future frame (at most window + hop - 1 of them).
    """

    def __init__(self, cfg: FrontendConfig):
        self.cfg = cfg
        self.log_mel = LogMel(cfg)
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)

    def process(self, samples: np.ndarray) -> torch.Tensor:
        """samples [n] float32 -> new frames [n_new_frames, n_mels]."""
        pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32).reshape(-1)])
        n_frames = self.cfg.n_frames(pending.size)
        if n_frames == 0:
            self._pending = pending
            return torch.zeros(0, self.cfg.n_mels)
        hop, window = self.cfg.hop_samples, self.cfg.window_samples
        frames = self.log_mel(torch.from_numpy(pending[: (n_frames - 1) * hop + window]))
        self._pending = pending[n_frames * hop:].copy()
        return frames
