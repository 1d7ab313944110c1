"""Log-mel features in torch: one offline function and a streaming class that emits exactly the same
frames (framing and filters: audio/mel.py)."""
from __future__ import annotations

import numpy as np
import torch
import torchaudio.functional

from audio.config import FrontendConfig
from audio.mel import StreamingFramer, check_framing, scale_log_mel


def mel_filterbank(cfg: FrontendConfig) -> torch.Tensor:
    """Triangular HTK-mel filters without area normalisation, [n_fft // 2 + 1, n_mels] (torchaudio's;
    audio/mel.py's numpy `mel_weights` is the same filters for the torch-free path, tested equal)."""
    return torchaudio.functional.melscale_fbanks(cfg.n_fft // 2 + 1, cfg.f_min_hz, cfg.f_max_hz, cfg.n_mels,
                                                 cfg.sample_rate_hz, norm=None, mel_scale="htk")


class LogMel:
    """Offline log-mel: samples [..., n_samples] -> frames [..., n_frames, n_mels] (float32)."""

    def __init__(self, cfg: FrontendConfig):
        check_framing(cfg)
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
        return scale_log_mel(torch.log(power @ self.mel + cfg.log_floor), cfg)


class StreamingLogMel(StreamingFramer):
    """Chunks of any size in, the same frames as `LogMel` on the whole signal out (torch tensors)."""

    def __init__(self, cfg: FrontendConfig):
        super().__init__(cfg, LogMel(cfg))
