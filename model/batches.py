"""Training batches from clips held as features: augmentation, silence examples, chained clips.

Each example is one clip's features [n_frames, mel] (a wav clip through the frontend, or a log-mel
image) with its label at the clip's last frame. In a share of the batches the clips are chained,
several to a sequence, with a loss at the end of each: the recurrent state then has to carry on from
whatever came before and let go of it, which the streaming recognizer needs (it never resets).

With a talk bank (model/talk_data.py), every batch also gets `talk_share` rows of running speech as
long as its sequences, `_unknown_` on every frame after `talk_warmup_frames`: in a stream the detector
reads every frame, so talk must read as talk all the way through, not only at one trained frame.

With several processes (torchrun) every rank draws the same epoch order and takes its own slice of
each batch, so the ranks together train on exactly the batches one process would.
"""
from __future__ import annotations

import numpy as np
import torch

from audio import augment
from audio.augment import AugmentConfig
from audio.config import FrontendConfig
from model.feature_data import FeatureSet, NoiseBank
from model.labels import LABELS, SILENCE, UNKNOWN
from model.talk_data import TalkBank

# Generated `_silence_` examples: noise at RMS -70..-20 dBFS, as the waveform loaders made them.
SILENCE_LEVEL_DB = (-70.0, -20.0)


class BatchMaker:
    """Training set + noise -> augmented batches (features [S, k * T, mel], labels [S, k], ...)."""

    def __init__(self, train: FeatureSet, noise: NoiseBank, frontend: FrontendConfig, aug: AugmentConfig,
                 batch_size: int, silence_share: float, chain_prob: float, chain_clips: int, seed: int,
                 fill: torch.Tensor, rank: int = 0, world_size: int = 1, talk: TalkBank | None = None,
                 talk_share: float = 0.0, talk_hard_share: float = 0.5, talk_warmup_frames: int = 20):
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} does not split over {world_size} processes")
        self.train, self.noise, self.frontend, self.aug = train, noise, frontend, aug
        self.batch_size, self.silence_share = batch_size, silence_share
        self.chain_prob, self.chain_clips = chain_prob, chain_clips
        self.fill = fill
        self.rank, self.world_size = rank, world_size
        self.order_rng = np.random.default_rng(seed)              # the same on every rank
        self.gen = torch.Generator().manual_seed(seed + 7919 * rank)  # each rank augments differently
        self.silence_index = LABELS.index(SILENCE)
        self.n_frames = train.feats.shape[1]
        self.talk, self.talk_share, self.talk_hard_share = talk, talk_share, talk_hard_share
        self.talk_warmup_frames = talk_warmup_frames
        self.talk_rng = np.random.default_rng(seed + 7919 * rank)

    @property
    def steps_per_epoch(self) -> int:
        return int(len(self.train) * (1 + self.silence_share)) // self.batch_size

    def epoch_batches(self):
        n_words = len(self.train)
        n_silence = int(round(self.silence_share * n_words))
        order = self.order_rng.permutation(n_words + n_silence)   # indices >= n_words are generated silence
        share = self.batch_size // self.world_size
        for start in range(0, self.steps_per_epoch * self.batch_size, self.batch_size):
            mine = start + self.rank * share
            yield self.make(order[mine:mine + share])

    def silence(self, n: int) -> torch.Tensor:
        """[n, T, mel] features of noise alone at a random level."""
        power = self.noise.sample(n, self.n_frames, self.gen)
        level_db = SILENCE_LEVEL_DB[0] + (SILENCE_LEVEL_DB[1] - SILENCE_LEVEL_DB[0]) * torch.rand(n, generator=self.gen)
        return augment.from_power(power * (10.0 ** (level_db / 10.0))[:, None, None], self.frontend)

    def _augment(self, feats: torch.Tensor, from_wav: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
        """Reverberation, gain, noise (on the `noisy` rows) and image-like rounding (`from_wav` rows)."""
        return self._round(self._noise(self._colour(feats), noisy), from_wav)

    def _colour(self, feats: torch.Tensor) -> torch.Tensor:
        aug, cfg, gen = self.aug, self.frontend, self.gen
        if aug.reverb_prob > 0:
            use = torch.rand(len(feats), generator=gen) < aug.reverb_prob
            if use.any():
                feats[use] = augment.reverberate(feats[use], cfg, aug.reverb_rt60_s_min, aug.reverb_rt60_s_max, gen)
        if aug.gain_db > 0:
            feats = augment.random_gain(feats, aug.gain_db, cfg, gen, aug.quiet_share, aug.quiet_db_min)
        return feats

    def _noise(self, feats: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
        aug, cfg, gen = self.aug, self.frontend, self.gen
        if aug.noise_prob > 0:
            noise = self.noise.sample(len(feats), feats.shape[1], gen)
            mixed = augment.mix_noise(feats, noise, aug.noise_prob, aug.snr_db_min, aug.snr_db_max, cfg, gen)
            feats = torch.where(noisy[:, None, None], mixed, feats)
        return feats

    def _round(self, feats: torch.Tensor, from_wav: torch.Tensor) -> torch.Tensor:
        return augment.round_like_images(feats, from_wav) if self.aug.round_wav else feats

    def make(self, index: np.ndarray):
        """-> (features [S, T, mel], labels [S, k], loss frames [k], frame targets [S, T]): S sequences
        of k clips each, labelled at each clip's last frame; frame targets are -100 (no loss) except on
        the talk rows, which are `_unknown_` on every frame after the warm-up."""
        aug, cfg, gen = self.aug, self.frontend, self.gen
        n_frames = self.n_frames
        is_word = torch.from_numpy(index < len(self.train))
        words = index[index < len(self.train)]
        feats = torch.empty(len(index), n_frames, cfg.n_mels)
        feats[is_word] = torch.from_numpy(self.train.feats[words]).float()
        if (~is_word).any():
            feats[~is_word] = self.silence(int((~is_word).sum()))
        labels = torch.full((len(index),), self.silence_index, dtype=torch.long)
        labels[is_word] = torch.from_numpy(self.train.labels[words])
        from_wav = torch.ones(len(index), dtype=torch.bool)
        from_wav[is_word] = ~torch.from_numpy(self.train.from_image[words])

        silence = cfg.silence_feature
        feats = augment.time_shift(feats, int(round(aug.shift_ms / cfg.hop_ms)), silence, gen)
        if aug.stretch_min != 1.0 or aug.stretch_max != 1.0 or aug.warp_min != 1.0 or aug.warp_max != 1.0:
            feats = augment.stretch_and_warp(feats, (aug.stretch_min, aug.stretch_max), (aug.warp_min, aug.warp_max),
                                             silence, gen)
        feats = self._augment(feats, from_wav, noisy=is_word)   # silence rows are noise already

        segments = 1
        chain = self.order_rng.random() < self.chain_prob   # the same decision on every rank
        if self.chain_clips > 1 and chain and len(index) >= self.chain_clips:
            # Consecutive examples of the (shuffled) batch become one sequence: [B, T] -> [B / k, k * T].
            segments = self.chain_clips
            keep = len(index) - len(index) % segments
            feats = feats[:keep].reshape(keep // segments, segments * n_frames, cfg.n_mels)
            labels = labels[:keep].reshape(keep // segments, segments)
        else:
            labels = labels[:, None]
        loss_frames = torch.tensor([(k + 1) * n_frames - 1 for k in range(segments)])
        targets = torch.full(feats.shape[:2], -100, dtype=torch.long)
        n_talk = int(round(self.talk_share * len(index))) if self.talk is not None else 0
        if n_talk:
            talk = torch.from_numpy(self.talk.crops(n_talk, feats.shape[1], self.talk_rng, self.talk_hard_share)).float()
            talk_targets = torch.full((n_talk, feats.shape[1]), LABELS.index(UNKNOWN), dtype=torch.long)
            talk_targets[:, :self.talk_warmup_frames] = -100
            all_rows = torch.ones(n_talk, dtype=torch.bool)
            clean = self._colour(talk)
            talk = self._round(self._noise(clean.clone(), all_rows), all_rows)
            # Only frames where the talk is heard are "other speech": pauses between sentences, and
            # frames the added noise drowns, are left untrained, or `_silence_` (noise) learns to read as
            # `_unknown_` (wav validation silence: 0.23, then 0.63 with pauses alone left out).
            talk_targets[pause_frames(clean, cfg) | drowned_frames(clean, talk, cfg)] = -100
            feats = torch.cat([feats, talk])
            # The talk rows' clip-end labels too are `_unknown_` only where talk is heard (-100 is ignored).
            labels = torch.cat([labels, talk_targets[:, loss_frames]])
            targets = torch.cat([targets, talk_targets])
        feats = augment.spec_augment(feats, aug, gen, self.fill)
        return feats, labels, loss_frames, targets


PAUSE_BELOW_PEAK_DB = 30.0


def pause_frames(feats: torch.Tensor, frontend: FrontendConfig) -> torch.Tensor:
    """[B, T, mel] features -> [B, T] bool: frames more than PAUSE_BELOW_PEAK_DB under the sequence's
    loud frames (its 95th-percentile frame energy), i.e. the pauses of running speech."""
    energy_db = 10 * torch.log10(augment.to_power(feats, frontend).sum(-1) + 1e-20)
    loud = energy_db.quantile(0.95, dim=1, keepdim=True)
    return energy_db < loud - PAUSE_BELOW_PEAK_DB


def drowned_frames(clean: torch.Tensor, noisy: torch.Tensor, frontend: FrontendConfig) -> torch.Tensor:
    """[B, T] bool: frames where the noise added to `clean` has more than half the clean sound's power
    (the talk is not clearly heard over it)."""
    clean_power = augment.to_power(clean, frontend).sum(-1)
    return augment.to_power(noisy, frontend).sum(-1) > 1.5 * clean_power
