"""Running speech ("talk") held as features: the negatives a stream detector must stay quiet on.

A talk bank is every file's log-mel frames end to end in one float16 array [frames, mel]. Training
crops sequences of any length out of it (a crop may run across a file boundary: one talker handing
over to the next is still talk) and asks for `_unknown_` on every frame (model/batches.py). Mined
frames, where the model being trained fires a command on talk, can be drawn as crop ends more often.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import torch

from audio.config import FrontendConfig
from audio.features import LogMel
from audio.io import AudioReadError, find_audio_files, read_audio


@dataclass
class TalkBank:
    feats: np.ndarray                          # [total_frames, mel] float16
    n_files: int
    hard_ends: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))   # mined frame indices

    @property
    def hours(self) -> float:
        return len(self.feats) * 0.01 / 3600   # 10 ms frames (checked in from_paths)

    @classmethod
    def from_paths(cls, paths: list[str], frontend: FrontendConfig) -> "TalkBank":
        """Every audio file under `paths` (files or folders). Unreadable files are counted, skipped and
        reported in one warning."""
        if frontend.hop_ms != 10.0:
            raise ValueError("talk banks assume 10 ms frames")
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
        if n_bad:
            print(f"warning: {n_bad} of {len(files)} talk files could not be read; training goes on without them",
                  file=sys.stderr)
        feats = np.concatenate(parts) if parts else np.zeros((0, frontend.n_mels), np.float16)
        return cls(feats, len(parts))

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
def mine_hard_frames(network, bank: TalkBank, frontend: FrontendConfig, level: float,
                     smoothing_ms: float = 250.0, chunk_frames: int = 3000, min_gap_frames: int = 10) -> np.ndarray:
    """Frame indices of `bank` where `network`'s posteriors, averaged over `smoothing_ms` as the
    detector does, give some command at least `level`: the talk the model would fire on. At most one
    frame per `min_gap_frames`. Chunks of `chunk_frames` run as one batch from a zero state."""
    from model.labels import LABELS, command_labels
    commands = [LABELS.index(label) for label in command_labels(LABELS)]
    device = next(network.parameters()).device
    n_chunks = len(bank.feats) // chunk_frames
    if n_chunks == 0:
        return np.zeros(0, np.int64)
    feats = torch.from_numpy(bank.feats[:n_chunks * chunk_frames]).float().reshape(n_chunks, chunk_frames, -1)
    probs = []
    for start in range(0, n_chunks, 32):
        logits, _ = network(feats[start:start + 32].to(device))
        probs.append(torch.softmax(logits, -1)[..., commands].cpu())
    probs = torch.cat(probs)                                       # [chunks, frames, commands]
    width = max(1, int(round(smoothing_ms / frontend.hop_ms)))
    smoothed = torch.nn.functional.avg_pool1d(probs.transpose(1, 2), width, stride=1).transpose(1, 2)
    # avg_pool's output frame j averages input frames j .. j + width - 1: it is known at frame j + width - 1.
    hot = (smoothed.amax(-1) >= level).numpy()
    rows, cols = np.nonzero(hot)
    frames = rows * chunk_frames + cols + width - 1
    if len(frames) == 0:
        return frames.astype(np.int64)
    keep = np.concatenate([[True], np.diff(frames) >= min_gap_frames])
    return frames[keep].astype(np.int64)
