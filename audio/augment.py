"""Training-time augmentation in the feature domain: batches of log-mel features [batch, time, mel].

Why the feature domain: the log-mel image clips have no audio, so whatever a wav clip gets must be
done on features for both to get it alike. Each audio operation has its log-mel counterpart: gain
scales the band power (an offset above the log floor), noise and reverberation are added as band
power (the noise through the same frontend),
speed becomes a time stretch plus a mel-axis warp. `to_power`/`from_power` undo and redo the
frontend's log mapping (audio/config.py), so these functions work for any frontend scale.

Everything takes an explicit torch.Generator so that training is reproducible from its seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from audio.config import FrontendConfig


@dataclass(frozen=True)
class AugmentConfig:
    shift_ms: float = 100.0            # random time shift, +- this much, silence filled
    stretch_min: float = 0.85          # time stretch factor (the tempo half of speed perturbation)
    stretch_max: float = 1.15
    warp_min: float = 0.9              # mel-axis warp factor (the pitch/formant half: voice variety)
    warp_max: float = 1.1
    gain_db: float = 8.0               # random gain, +- this much
    quiet_share: float = 0.0           # share of clips made quiet instead: a gain of quiet_db_min to -gain_db
    quiet_db_min: float = -40.0        # (a microphone that records far below the training level)
    noise_prob: float = 0.8            # probability of adding background noise
    snr_db_min: float = 0.0
    snr_db_max: float = 30.0
    reverb_prob: float = 0.3           # late reverberation as decaying band power
    reverb_rt60_s_min: float = 0.1
    reverb_rt60_s_max: float = 0.7
    round_wav: bool = True             # round wav clips' features to integers as the images are
    time_masks: int = 2
    time_mask_frames: int = 10
    freq_masks: int = 2
    freq_mask_bins: int = 6


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def to_power(feats: torch.Tensor, cfg: FrontendConfig) -> torch.Tensor:
    """Features -> mel band power (the frontend's log mapping undone; floored bins give their floor)."""
    return (torch.exp((feats - cfg.log_offset) / cfg.log_scale) - cfg.log_floor).clamp_min(0.0)


def from_power(power: torch.Tensor, cfg: FrontendConfig) -> torch.Tensor:
    """Mel band power -> features, exactly as the frontend maps it (floor included)."""
    feats = cfg.log_scale * torch.log(power + cfg.log_floor) + cfg.log_offset
    return feats if cfg.feature_floor is None else feats.clamp_min(cfg.feature_floor)


def time_shift(feats: torch.Tensor, max_frames: int, fill: float, gen: torch.Generator) -> torch.Tensor:
    """Shift each clip by up to +- max_frames frames; the frames shifted in are `fill` (silence)."""
    batch, n_time, _ = feats.shape
    if max_frames <= 0:
        return feats
    shifts = torch.randint(-max_frames, max_frames + 1, (batch,), generator=gen)
    padded = F.pad(feats, (0, 0, max_frames, max_frames), value=fill)
    index = torch.arange(n_time)[None, :] + max_frames - shifts[:, None]
    return padded.gather(1, index[:, :, None].expand(-1, -1, feats.shape[2]))


def stretch_and_warp(feats: torch.Tensor, stretch: tuple[float, float], warp: tuple[float, float], fill: float,
                     gen: torch.Generator) -> torch.Tensor:
    """Time stretch about the clip's centre and mel-axis warp from band 0, one bilinear resampling.

    A factor above 1 plays faster (the word gets shorter) / moves energy to lower bands. Frames
    read from outside the clip are `fill`; bands above the top band repeat it."""
    batch, n_time, n_mel = feats.shape
    rate = _uniform(batch, *stretch, gen)
    alpha = _uniform(batch, *warp, gen)
    t = torch.arange(n_time, dtype=feats.dtype)
    m = torch.arange(n_mel, dtype=feats.dtype)
    centre = (n_time - 1) / 2
    src_t = centre + (t[None, :] - centre) * rate[:, None]                    # [B, T]
    src_m = (m[None, :] * alpha[:, None]).clamp(max=n_mel - 1)                # [B, M]
    # grid_sample's coordinates: x (width = mel) and y (height = time) in [-1, 1], align_corners.
    grid_x = (2 * src_m / (n_mel - 1) - 1)[:, None, :].expand(-1, n_time, -1)
    grid_y = (2 * src_t / (n_time - 1) - 1)[:, :, None].expand(-1, -1, n_mel)
    grid = torch.stack([grid_x, grid_y], dim=-1)
    out = F.grid_sample((feats - fill)[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[:, 0] + fill


def apply_gain(feats: torch.Tensor, gain_db: torch.Tensor, cfg: FrontendConfig) -> torch.Tensor:
    """A gain of `gain_db` [batch] dB on the band power (the frontend's log floor stays where it is,
    as it does when the audio itself is louder): log_scale * ln(10^(dB/10)) above the floor."""
    return from_power(to_power(feats, cfg) * (10.0 ** (gain_db / 10.0))[:, None, None], cfg)


def random_gain(feats: torch.Tensor, gain_db: float, cfg: FrontendConfig, gen: torch.Generator,
                quiet_share: float = 0.0, quiet_db_min: float = -40.0) -> torch.Tensor:
    """A random gain in +- gain_db per clip; a `quiet_share` of the clips get quiet_db_min to -gain_db."""
    n = feats.shape[0]
    gains = _uniform(n, -gain_db, gain_db, gen)
    if quiet_share > 0:
        quiet = torch.rand(n, generator=gen) < quiet_share
        gains = torch.where(quiet, _uniform(n, quiet_db_min, -gain_db, gen), gains)
    return apply_gain(feats, gains, cfg)


def mix_noise(feats: torch.Tensor, noise_power: torch.Tensor, prob: float, snr_db_min: float, snr_db_max: float,
              cfg: FrontendConfig, gen: torch.Generator) -> torch.Tensor:
    """Add noise band power [batch, time, mel] at a random SNR to a random `prob` share of the batch.

    The SNR is between the mean band power of the clip and of the noise, over the whole clip (as the
    waveform version measured RMS over the clip); near-silent clips get the noise at its own level."""
    batch = feats.shape[0]
    use = torch.rand(batch, generator=gen) < prob
    if not use.any():
        return feats
    power = to_power(feats, cfg)
    snr_db = _uniform(batch, snr_db_min, snr_db_max, gen)
    signal = power.sum(-1).mean(-1)
    noise = noise_power.sum(-1).mean(-1).clamp_min(1e-12)
    scale = signal / noise / 10.0 ** (snr_db / 10.0)
    mixed = from_power(power + scale[:, None, None] * noise_power, cfg)
    # A clip without signal has no SNR to set: it stays as it is (noise at full scale would be wrong).
    use = use & (signal > 1e-9)
    return torch.where(use[:, None, None], mixed, feats)


def reverberate(feats: torch.Tensor, cfg: FrontendConfig, rt60_min_s: float, rt60_max_s: float,
                gen: torch.Generator) -> torch.Tensor:
    """Late reverberation on band power: each frame's power leaks into the following frames with an
    exponential decay (60 dB over a random RT60), the direct sound kept at its level."""
    batch, n_time, _ = feats.shape
    rt60 = _uniform(batch, rt60_min_s, rt60_max_s, gen)
    n_taps = max(2, int(round(rt60_max_s * 1000.0 / cfg.hop_ms)))
    lag_s = torch.arange(n_taps, dtype=feats.dtype) * cfg.hop_ms / 1000.0
    # Power falls 60 dB over RT60: exp(-13.8 t / RT60); the direct path (lag 0) has weight 1.
    taps = torch.exp(-13.8 * lag_s[None, :] / rt60[:, None])
    power = to_power(feats, cfg)
    size = n_time + n_taps
    spectrum = torch.fft.rfft(power, size, dim=1) * torch.fft.rfft(taps, size, dim=1)[:, :, None]
    wet = torch.fft.irfft(spectrum, size, dim=1)[:, :n_time].clamp_min(0.0)
    # Keep the clip's loudest frame where it was (as a room's level would be set by the talker).
    scale = power.sum(-1).amax(1) / wet.sum(-1).amax(1).clamp_min(1e-12)
    return from_power(wet * scale[:, None, None], cfg)


def round_like_images(feats: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Integer features for the `rows` [batch] bool (wav clips), as the images' pixels are."""
    return torch.where(rows[:, None, None], feats.round(), feats)


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
