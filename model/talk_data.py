"""Running speech ("talk") held as features: the negatives a stream detector must stay quiet on.

A talk bank is every file's log-mel frames end to end in one float16 array [frames, mel]. Training
crops sequences of any length out of it (a crop may run across a file boundary: one talker handing
over to the next is still talk) and asks for `_unknown_` on every frame (model/batches.py). Mined
frames, where the model being trained fires a command on talk, can be drawn as crop ends more often.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from audio.config import FrontendConfig
from audio.features import LogMel
from audio.io import AudioReadError, find_audio_files, read_audio
from model.feature_data import warn_unreadable


@dataclass
class TalkBank:
    feats: np.ndarray                          # [total_frames, mel] float16
    n_files: int
    hop_ms: float = 10.0
    hard_ends: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))   # mined frame indices

    @property
    def hours(self) -> float:
        return len(self.feats) * self.hop_ms / 3.6e6

    @classmethod
    def from_paths(cls, paths: list[str], frontend: FrontendConfig) -> "TalkBank":
        """Every audio file under `paths` (files or folders). Unreadable files are counted, skipped and
        reported in one warning."""
        log_mel = LogMel(frontend)
        parts, n_bad = [], 0
        files = find_audio_files(paths)
        with torch.inference_mode():
            for path in files:
                try:
                    samples = read_audio(path, frontend.sample_rate_hz)
                except AudioReadError:
                    n_bad += 1
                    continue
                frames = log_mel(torch.from_numpy(samples))
                if len(frames):
                    parts.append(frames.numpy().astype(np.float16))
        warn_unreadable(n_bad, len(files), "the talk paths")
        if not parts:
            raise ValueError(f"no readable audio in the talk paths {', '.join(map(str, paths))}")
        return cls(np.concatenate(parts), len(parts), frontend.hop_ms)

    def crops(self, n: int, n_frames: int, rng: np.random.Generator, hard_share: float = 0.0) -> np.ndarray:
        """[n, n_frames, mel] float16 crops at random places; a `hard_share` of them end a few frames
        after a mined frame (when there are any), so the frames that fired are trained again."""
        last_start = len(self.feats) - n_frames
        if last_start < 0:
            raise ValueError(f"talk bank of {len(self.feats)} frames is shorter than one {n_frames}-frame crop")
        starts = rng.integers(0, last_start + 1, n)
        if len(self.hard_ends) and hard_share > 0:
            hard = rng.random(n) < hard_share
            ends = self.hard_ends[rng.integers(0, len(self.hard_ends), int(hard.sum()))] + rng.integers(0, 30, int(hard.sum()))
            starts[hard] = np.clip(ends - n_frames + 1, 0, last_start)
        return self.feats[starts[:, None] + np.arange(n_frames)[None, :]]


@torch.no_grad()
def mine_hard_frames(network, bank: TalkBank, frontend: FrontendConfig, n_hard: int,
                     smoothing_ms: float = 250.0, chunk_frames: int = 3000, min_gap_frames: int = 10) -> np.ndarray:
    """At most `n_hard` frame indices of `bank` where `network` comes closest to firing a command: peaks of
    the largest command posterior averaged over `smoothing_ms` (as the detector does), at least
    `min_gap_frames` apart. The hardest talk, however quiet the model has become (a fixed level found
    3 frames after two epochs, and half the talk rows then ended on them). Chunks of `chunk_frames`
    run as one batch from a zero state."""
    from model.labels import LABELS, command_labels
    commands = [LABELS.index(label) for label in command_labels(LABELS)]
    device = next(network.parameters()).device
    n_chunks = len(bank.feats) // chunk_frames
    if n_chunks == 0 or n_hard <= 0:
        return np.zeros(0, np.int64)
    feats = torch.from_numpy(bank.feats[:n_chunks * chunk_frames]).float().reshape(n_chunks, chunk_frames, -1)
    probs = []
    for start in range(0, n_chunks, 32):
        logits, _ = network(feats[start:start + 32].to(device))
        probs.append(torch.softmax(logits, -1)[..., commands].amax(-1).cpu())
    probs = torch.cat(probs)[:, None]                              # [chunks, 1, frames]
    width = max(1, int(round(smoothing_ms / frontend.hop_ms)))
    # avg_pool's output frame j averages input frames j .. j + width - 1: it is known at frame j + width - 1.
    smoothed = torch.nn.functional.avg_pool1d(probs, width, stride=1)
    half = min_gap_frames // 2
    peaks = torch.nn.functional.max_pool1d(smoothed, 2 * half + 1, stride=1, padding=half) == smoothed
    score = torch.where(peaks, smoothed, torch.full_like(smoothed, -1.0)).reshape(-1)
    # Peaks can be plateaus of equal values: keep the best ones greedily, `min_gap_frames` apart.
    candidates = torch.topk(score, min(score.numel(), 8 * n_hard)).indices.numpy()
    width_out = smoothed.shape[-1]
    frames = (candidates // width_out) * chunk_frames + candidates % width_out + width - 1
    kept: list[int] = []
    for frame in frames:
        if all(abs(frame - k) >= min_gap_frames for k in kept):
            kept.append(int(frame))
            if len(kept) == n_hard:
                break
    return np.sort(np.array(kept, np.int64))
