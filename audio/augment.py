"""Training-time augmentation on batches of waveforms [batch, n_samples] and log-mel [batch, time, mel].

Everything takes an explicit torch.Generator so that training is reproducible from its seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    shift_ms: float = 100.0            # random time shift, +- this much, zero filled
    speed_min: float = 0.85            # speed perturbation (tempo and pitch together)
    speed_max: float = 1.15
    gain_db: float = 8.0               # random gain, +- this much
    noise_prob: float = 0.8            # probability of mixing background noise
    snr_db_min: float = 0.0
    snr_db_max: float = 30.0
    reverb_prob: float = 0.3
    lowpass_prob: float = 0.15         # band-limit like 8 kHz recordings and cheap microphones
    lowpass_hz_min: float = 3000.0
    lowpass_hz_max: float = 5500.0
    reverb_rt60_s_min: float = 0.1
    reverb_rt60_s_max: float = 0.7
    time_masks: int = 2
    time_mask_frames: int = 10
    freq_masks: int = 2
    freq_mask_bins: int = 6


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def time_shift(wave: torch.Tensor, max_shift_samples: int, gen: torch.Generator) -> torch.Tensor:
    n = wave.shape[-1]
    shifts = torch.randint(-max_shift_samples, max_shift_samples + 1, (wave.shape[0],), generator=gen)
    # Gather with an index clamped to the padded range: one vectorised op instead of a loop.
    padded = F.pad(wave, (max_shift_samples, max_shift_samples))
    index = torch.arange(n)[None, :] + max_shift_samples - shifts[:, None]
    return padded.gather(1, index)


def speed_perturb(wave: torch.Tensor, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    """Resample each clip by a random factor (linear interpolation), cropped/padded to the same length."""
    n = wave.shape[-1]
    out = torch.zeros_like(wave)
    for i, factor in enumerate(_uniform(wave.shape[0], low, high, gen).tolist()):
        new_n = max(2, int(round(n / factor)))
        stretched = F.interpolate(wave[i][None, None], size=new_n, mode="linear", align_corners=False)[0, 0]
        if new_n >= n:
            start = (new_n - n) // 2
            out[i] = stretched[start:start + n]
        else:
            start = (n - new_n) // 2
            out[i, start:start + new_n] = stretched
    return out


def random_gain(wave: torch.Tensor, gain_db: float, gen: torch.Generator) -> torch.Tensor:
    db = _uniform(wave.shape[0], -gain_db, gain_db, gen)
    return wave * (10.0 ** (db / 20.0))[:, None]


def reverberate(wave: torch.Tensor, sample_rate_hz: int, rt60_min: float, rt60_max: float,
                gen: torch.Generator) -> torch.Tensor:
    """Convolve with a synthetic room response: exponentially decaying noise (FFT convolution)."""
    batch, n = wave.shape
    rt60 = _uniform(batch, rt60_min, rt60_max, gen)
    ir_samples = int(rt60_max * sample_rate_hz)
    t = torch.arange(ir_samples) / sample_rate_hz
    # amplitude falls 60 dB over rt60 seconds: exp(-6.9 t / rt60)
    ir = torch.randn(batch, ir_samples, generator=gen) * torch.exp(-6.9 * t[None, :] / rt60[:, None])
    ir[:, 0] = 1.0  # the direct path
    ir = ir / ir.norm(dim=1, keepdim=True)
    size = n + ir_samples
    wet = torch.fft.irfft(torch.fft.rfft(wave, size) * torch.fft.rfft(ir, size), size)[:, :n]
    scale = wave.abs().amax(dim=1, keepdim=True) / wet.abs().amax(dim=1, keepdim=True).clamp_min(1e-8)
    return wet * scale


def lowpass(wave: torch.Tensor, sample_rate_hz: int, cutoff_hz_min: float, cutoff_hz_max: float,
            gen: torch.Generator) -> torch.Tensor:
    """Remove everything above a random cutoff (brick wall in the FFT domain, as a resampler would)."""
    n = wave.shape[-1]
    spectrum = torch.fft.rfft(wave)
    bin_hz = torch.fft.rfftfreq(n, 1.0 / sample_rate_hz)
    cutoff = _uniform(wave.shape[0], cutoff_hz_min, cutoff_hz_max, gen)
    return torch.fft.irfft(spectrum * (bin_hz[None, :] <= cutoff[:, None]), n)


def mix_noise(wave: torch.Tensor, noise: torch.Tensor, prob: float, snr_db_min: float, snr_db_max: float,
              gen: torch.Generator) -> torch.Tensor:
    """Add `noise` [batch, n] at a random SNR to a random `prob` share of the batch.

    Near-silent clips get the noise at a level relative to full scale instead (their SNR is meaningless).
    """
    batch = wave.shape[0]
    use = (torch.rand(batch, generator=gen) < prob).float()
    snr_db = _uniform(batch, snr_db_min, snr_db_max, gen)
    signal_rms = wave.square().mean(dim=1).sqrt().clamp_min(1e-4)
    noise_rms = noise.square().mean(dim=1).sqrt().clamp_min(1e-8)
    scale = signal_rms / noise_rms / (10.0 ** (snr_db / 20.0))
    return wave + (use * scale)[:, None] * noise


def spec_augment(feats: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator, fill: torch.Tensor) -> torch.Tensor:
    """Time and frequency masks on [batch, time, mel], filled with `fill` [mel] (the per-bin mean)."""
    batch, n_time, n_mel = feats.shape
    mask = torch.zeros(batch, n_time, n_mel, dtype=torch.bool)
    for size, n_masks, max_width, dim in ((n_time, cfg.time_masks, cfg.time_mask_frames, 1),
                                         (n_mel, cfg.freq_masks, cfg.freq_mask_bins, 2)):
        index = torch.arange(size)[None, :]
        for _ in range(n_masks):
            width = torch.randint(0, max_width + 1, (batch, 1), generator=gen)
            start = (torch.rand(batch, 1, generator=gen) * (size - width).clamp_min(1)).long()
            hit = (index >= start) & (index < start + width)
            mask |= hit[:, :, None] if dim == 1 else hit[:, None, :]
    return torch.where(mask, fill.expand_as(feats), feats)
