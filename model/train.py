"""Training on a Speech Commands folder: augmentation, chained clips, EMA weights, reports.

Each training example is a 1 s clip whose loss is taken at its last frame, as the source material's
classifier does ("the final recurrent output feeds the classifier"). In a share of the batches the
clips are chained, several to a sequence, with a loss at the end of each: the recurrent state then
has to carry on from whatever came before and let go of it, which the streaming recognizer needs
since it never resets its state.
"""
from __future__ import annotations

import copy
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from audio import augment
from audio.augment import AugmentConfig
from audio.config import FrontendConfig
from audio.features import LogMel
from audio.io import read_audio, find_audio_files, AudioReadError
from model import data
from model.checkpoint import load_checkpoint, save_checkpoint
from model.detector import DetectorConfig
from model.evaluate import final_frame_posteriors, metrics
from model.labels import LABELS, SILENCE, UNKNOWN
from model.network import NetworkConfig, RecurrentClassifier


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    warmup_epochs: int = 2
    ema_decay: float = 0.998
    chain_prob: float = 0.5            # share of batches whose clips are chained into sequences
    chain_clips: int = 3               # clips per chained sequence
    negative_frame_weight: float = 0.0  # weight of a loss on every frame of `_unknown_`/`_silence_` clips
    negative_delay_ms: float = 300.0   # ...from this far into the clip (the state may still hold the
                                       # previous clip's word before that)
    word_frame_weight: float = 0.0     # weight of a loss on the frames just after each spoken word ends
    word_frames_ms: float = 300.0      # ...on this long a stretch (cut at the clip's end)
    silence_share: float = 0.1         # silence examples per word example, each epoch
    extra_unknown_share: float = 0.15  # cap on extra unknown examples, per training word clip (split
                                       # evenly between the paths given)
    seed: int = 0
    eval_every_epochs: int = 2
    max_clips: int = 0                 # 0: all; >0: a small subset (tests, quick experiments)
    threads: int = 0                   # 0: torch's default
    device: str = "cpu"                # where the network trains ("cuda": batches are still made on the CPU)
    distill_weight: float = 0.5        # with teachers: share of the loss that matches their averaged posteriors
    distill_temperature: float = 2.0


@dataclass
class TrainResult:
    network: RecurrentClassifier
    history: list[dict] = field(default_factory=list)
    report: dict = field(default_factory=dict)


@torch.no_grad()
def _feature_stats(log_mel: LogMel, waves: np.ndarray, n_clips: int = 2000,
                   transform=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-mel-bin mean and std of the training features (after `transform`, e.g. the network's PCEN)."""
    pick = waves[:: max(1, len(waves) // n_clips)]
    feats = log_mel(torch.as_tensor(pick).float() / 32767.0)
    if transform is not None:
        feats = transform(feats)
    feats = feats.reshape(-1, log_mel.cfg.n_mels)
    return feats.mean(0), feats.std(0).clamp_min(1e-3)


def load_extra_unknown(paths: list[str], frontend: FrontendConfig, max_clips: int,
                       rng: np.random.Generator) -> data.ClipSet:
    """Up to `max_clips` extra `_unknown_` training examples, an equal share from each path: random 1 s
    crops of its audio files (files in random order, at most 4 crops from one long file)."""
    waves = []
    n = frontend.clip_samples
    share = max_clips // max(1, len(paths))
    for path in paths:
        files = find_audio_files([path])
        taken = 0
        for i in rng.permutation(len(files)):
            if taken >= share:
                break
            try:
                samples = read_audio(files[i], frontend.sample_rate_hz)
            except AudioReadError:
                continue
            for _ in range(min(4, max(1, samples.size // n), share - taken)):
                start = int(rng.integers(0, max(1, samples.size - n)))
                waves.append(data.to_int16(data.fit_length(samples[start:start + n], n)))
                taken += 1
    if not waves:
        return data.ClipSet(np.zeros((0, n), np.int16), np.zeros(0, np.int64), [])
    return data.ClipSet(np.stack(waves), np.full(len(waves), LABELS.index(UNKNOWN), np.int64),
                        [f"extra-unknown-{i}" for i in range(len(waves))])


class BatchMaker:
    """Builds augmented training batches: waves -> (log-mel [B, T, mel], labels [B])."""

    def __init__(self, train: data.ClipSet, noises: list[np.ndarray], frontend: FrontendConfig,
                 aug: AugmentConfig, cfg: TrainConfig, log_mel: LogMel, fill: torch.Tensor):
        self.train, self.noises, self.frontend, self.aug, self.cfg = train, noises, frontend, aug, cfg
        self.log_mel, self.fill = log_mel, fill
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.silence_index = LABELS.index(SILENCE)

    def epoch_batches(self):
        n_words = len(self.train)
        n_silence = int(round(self.cfg.silence_share * n_words))
        order = self.rng.permutation(n_words + n_silence)  # indices >= n_words are silence
        for start in range(0, len(order) - self.cfg.batch_size + 1, self.cfg.batch_size):
            yield self.make(order[start:start + self.cfg.batch_size])

    def _noise(self, batch: int, n_samples: int) -> torch.Tensor:
        return torch.from_numpy(np.stack([data.random_noise_clip(self.noises, "train", n_samples, self.rng)
                                          for _ in range(batch)]))

    def make(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (log-mel [S, T, mel], labels [S, k], loss frames [k], speech end frames [S, k]): S sequences
        of k clips each; a clip's speech end frame counts from the clip's own first frame."""
        aug, fs, n = self.aug, self.frontend.sample_rate_hz, self.frontend.clip_samples
        is_word = index < len(self.train)
        waves = torch.zeros(len(index), n)
        waves[torch.from_numpy(is_word)] = torch.from_numpy(self.train.waves[index[is_word]]).float() / 32767.0
        labels = torch.full((len(index),), self.silence_index, dtype=torch.long)
        labels[torch.from_numpy(is_word)] = torch.from_numpy(self.train.labels[index[is_word]])

        waves = augment.time_shift(waves, int(aug.shift_ms * fs / 1000), self.gen)
        waves = augment.speed_perturb(waves, aug.speed_min, aug.speed_max, self.gen)
        if aug.reverb_prob > 0:
            use = torch.rand(len(index), generator=self.gen) < aug.reverb_prob
            if use.any():
                waves[use] = augment.reverberate(waves[use], fs, aug.reverb_rt60_s_min, aug.reverb_rt60_s_max, self.gen)
        if aug.lowpass_prob > 0:
            use = torch.rand(len(index), generator=self.gen) < aug.lowpass_prob
            if use.any():
                waves[use] = augment.lowpass(waves[use], fs, aug.lowpass_hz_min, aug.lowpass_hz_max, self.gen)
        waves = augment.random_gain(waves, aug.gain_db, self.gen)
        # Where each word ends, found on the clip before noise is added.
        speech_end = speech_end_frames(waves, self.frontend)
        # Silence rows are zeros so far: they always get noise, at its own random level.
        noise = self._noise(len(index), n)
        waves = augment.mix_noise(waves, noise, aug.noise_prob, aug.snr_db_min, aug.snr_db_max, self.gen)
        waves[~torch.from_numpy(is_word)] = noise[~torch.from_numpy(is_word)]

        segments = 1
        if self.cfg.chain_clips > 1 and torch.rand(1, generator=self.gen).item() < self.cfg.chain_prob:
            # Consecutive examples of the (shuffled) batch become one sequence: [B, n] -> [B / k, k * n].
            segments = self.cfg.chain_clips
            keep = len(index) - len(index) % segments
            waves = waves[:keep].reshape(keep // segments, segments * n)
            labels = labels[:keep].reshape(keep // segments, segments)
            speech_end = speech_end[:keep].reshape(keep // segments, segments)
        else:
            labels = labels[:, None]
            speech_end = speech_end[:, None]
        # The loss frames: the last frame that ends inside each clip.
        cfg = self.frontend
        loss_frames = torch.tensor([cfg.n_frames((k + 1) * n) - 1 for k in range(segments)])
        feats = augment.spec_augment(self.log_mel(waves), aug, self.gen, self.fill)
        return feats, labels, loss_frames, speech_end


def speech_end_frames(waves: torch.Tensor, frontend: FrontendConfig) -> torch.Tensor:
    """[B, n] clips -> [B] index of the last feature frame louder than halfway (in dB) between the
    clip's background (its 10th-percentile frame) and its loudest frame: where the spoken word ends.
    Halfway, not a fixed distance below the peak, because many clips carry their own room noise."""
    frames = waves.unfold(1, frontend.window_samples, frontend.hop_samples)
    energy_db = 10 * torch.log10(frames.pow(2).mean(-1) + 1e-10)
    peak, floor = energy_db.max(1, keepdim=True).values, energy_db.quantile(0.1, dim=1, keepdim=True)
    loud = energy_db >= (peak + floor) / 2
    last_from_end = loud.flip(1).int().argmax(1)
    return frames.shape[1] - 1 - last_from_end


WORD_END_MARGIN_FRAMES = 5


def word_frame_targets(labels: torch.Tensor, loss_frames: torch.Tensor, speech_end: torch.Tensor,
                       n_frames: int, span_frames: int) -> torch.Tensor:
    """Per-frame targets [S, T]: each word clip's label on `span_frames` frames from where its word
    ends (cut at the clip's loss frame), -100 elsewhere. Why: the detector averages the posteriors
    over a window and fires on any frame, so a word must read as itself for a while after it ends,
    not at one trained frame only (its clip's last)."""
    targets = torch.full((labels.shape[0], n_frames), -100, dtype=torch.long)
    word = labels != LABELS.index(SILENCE)
    first = 0
    for k, last in enumerate(loss_frames.tolist()):
        for row in torch.nonzero(word[:, k]).flatten().tolist():
            # A little after the halfway level: quiet fricative tails ("off", "yes") are part of the word.
            start = first + int(speech_end[row, k]) + WORD_END_MARGIN_FRAMES
            targets[row, start:min(start + span_frames, last + 1)] = labels[row, k]
        first = last + 1
    return targets


def negative_frame_targets(labels: torch.Tensor, loss_frames: torch.Tensor, n_frames: int,
                           delay_frames: int) -> torch.Tensor:
    """Per-frame targets [S, T] for the dense loss: the clip's label on the frames of `_unknown_` and
    `_silence_` clips (from `delay_frames` into the clip to its loss frame), -100 (ignored) elsewhere.
    Why: in a stream the detector reads every frame, not only a clip's last one, so other speech
    and noise must read as such all the way through, not just at the end."""
    targets = torch.full((labels.shape[0], n_frames), -100, dtype=torch.long)
    negative = (labels == LABELS.index(UNKNOWN)) | (labels == LABELS.index(SILENCE))
    first = 0
    for k, last in enumerate(loss_frames.tolist()):
        rows = negative[:, k]
        targets[rows, first + delay_frames:last + 1] = labels[rows, k, None]
        first = last + 1
    return targets


def _distill_loss(logits: torch.Tensor, teachers: list[RecurrentClassifier], feats: torch.Tensor,
                  loss_frames: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL divergence from the teachers' averaged softened posteriors at the loss frames (Hinton et al.
    2015; scaled by T^2 so its gradient keeps the size of the hard-label loss's)."""
    with torch.no_grad():
        probs = torch.stack([torch.softmax(t(feats)[0][:, loss_frames].reshape(-1, logits.shape[-1]) / temperature, -1)
                             for t in teachers]).mean(0)
    log_student = torch.log_softmax(logits / temperature, -1)
    return F.kl_div(log_student, probs, reduction="batchmean") * temperature ** 2


def _list_extra_words(folder: str) -> list[tuple[str, str]]:
    if not Path(folder).is_dir():
        raise data.DatasetError(f"extra words folder {folder} does not exist")
    items = data.word_clips(Path(folder))
    if not items:
        raise data.DatasetError(f"extra words folder {folder} has no word folders with audio files "
                                f"(expected e.g. {folder}/yes/*.wav)")
    return items


def _lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def train(data_dir: str | Path, out_dir: str | Path, net_cfg: NetworkConfig, cfg: TrainConfig,
          frontend: FrontendConfig = FrontendConfig(), aug: AugmentConfig = AugmentConfig(),
          extra_unknown: list[str] | None = None, detector: DetectorConfig = DetectorConfig(),
          show_progress: bool = True, teachers: list[str] | None = None,
          extra_words: list[str] | None = None) -> TrainResult:
    """`teachers`: model folders whose averaged posteriors (on the same augmented batch) the network
    also learns from (knowledge distillation: an ensemble's accuracy in one network's size).
    `extra_words`: folders of word folders (e.g. scripts/synthesize_words.py's) whose every clip
    joins training, labelled by its folder's word."""
    started = time.time()
    out_dir = Path(out_dir)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    splits = data.list_splits(data_dir)
    extra_word_items = {folder: _list_extra_words(folder) for folder in extra_words or []}   # fail before reading
    if cfg.max_clips:
        splits = {k: [v[i] for i in sorted(rng.permutation(len(v))[:cfg.max_clips])] for k, v in splits.items()}
    total = sum(len(v) for v in splits.values())
    with tqdm(total=total, desc="reading clips", unit="clip", disable=not show_progress) as bar:
        train_set = data.load_clips(data_dir, splits["train"], frontend, bar)
        eval_words = {s: data.load_clips(data_dir, splits[s], frontend, bar) for s in ("validation", "test")}
    noises = data.load_noise(data_dir, frontend)
    # The evaluation silence does not depend on the training seed (seed 0, as `speechcmd evaluate`
    # uses): runs with different seeds are then scored on the very same clips.
    eval_sets = {s: data.concat(w, data.silence_clips(noises, s, data.n_silence_clips(len(w)), frontend, 0))
                 for s, w in eval_words.items()}
    if extra_unknown:
        extra = load_extra_unknown(extra_unknown, frontend, int(cfg.extra_unknown_share * len(train_set)), rng)
        train_set = data.concat(train_set, extra)
    else:
        extra = None
    n_extra_words = 0
    for folder, items in extra_word_items.items():
        clips = data.load_clips(folder, items, frontend)
        if len(clips) < len(items):
            print(f"warning: {len(items) - len(clips)} of {len(items)} files in {folder} could not be read; "
                  "training goes on without them", file=sys.stderr)
        n_extra_words += len(clips)
        train_set = data.concat(train_set, clips)

    log_mel = LogMel(frontend)
    network = RecurrentClassifier(net_cfg)
    log_mel_mean, log_mel_std = _feature_stats(log_mel, train_set.waves)
    mean, std = log_mel_mean, log_mel_std
    if net_cfg.input_norm == "pcen":
        mean, std = _feature_stats(log_mel, train_set.waves, transform=lambda f: network.pcen(f)[0])
    network.feature_mean.copy_(mean)
    network.feature_std.copy_(std)
    ema = copy.deepcopy(network)
    # SpecAugment masks the log-mel input, so they are filled with the log-mel mean.
    maker = BatchMaker(train_set, noises, frontend, aug, cfg, log_mel, fill=log_mel_mean)
    device = torch.device(cfg.device)
    network.to(device)
    ema.to(device)
    teacher_nets = [load_checkpoint(path).network.to(device).eval() for path in teachers or []]

    optimizer = torch.optim.AdamW(network.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    steps_per_epoch = int(len(train_set) * (1 + cfg.silence_share)) // cfg.batch_size
    total_steps = steps_per_epoch * cfg.epochs
    delay_frames = int(round(cfg.negative_delay_ms / frontend.hop_ms))
    word_frames = int(round(cfg.word_frames_ms / frontend.hop_ms))
    step = 0
    history: list[dict] = []
    best = {"accuracy": -1.0}
    best_state = copy.deepcopy(ema.state_dict())
    for epoch in range(1, cfg.epochs + 1):
        network.train()
        loss_sum = correct = seen = 0
        bar = tqdm(maker.epoch_batches(), total=steps_per_epoch, desc=f"epoch {epoch}/{cfg.epochs}",
                   unit="batch", disable=not show_progress, leave=False)
        for feats, labels, loss_frames, speech_end in bar:
            for group in optimizer.param_groups:
                group["lr"] = cfg.learning_rate * _lr_factor(step, cfg.warmup_epochs * steps_per_epoch, total_steps)
            feats = feats.to(device)
            frame_logits, _ = network(feats)
            if cfg.negative_frame_weight > 0:
                targets = negative_frame_targets(labels, loss_frames, frame_logits.shape[1], delay_frames).to(device)
            if cfg.word_frame_weight > 0:
                word_targets = word_frame_targets(labels, loss_frames, speech_end, frame_logits.shape[1],
                                                  word_frames).to(device)
            labels, loss_frames = labels.to(device), loss_frames.to(device)
            logits = frame_logits[:, loss_frames].reshape(-1, frame_logits.shape[-1])
            labels = labels.reshape(-1)
            loss = F.cross_entropy(logits, labels, label_smoothing=cfg.label_smoothing)
            if teacher_nets:
                loss = (1 - cfg.distill_weight) * loss + cfg.distill_weight * _distill_loss(
                    logits, teacher_nets, feats, loss_frames, cfg.distill_temperature)
            if cfg.negative_frame_weight > 0 and (targets >= 0).any():
                loss = loss + cfg.negative_frame_weight * F.cross_entropy(
                    frame_logits.reshape(-1, frame_logits.shape[-1]), targets.reshape(-1), ignore_index=-100,
                    label_smoothing=cfg.label_smoothing)
            if cfg.word_frame_weight > 0 and (word_targets >= 0).any():
                loss = loss + cfg.word_frame_weight * F.cross_entropy(
                    frame_logits.reshape(-1, frame_logits.shape[-1]), word_targets.reshape(-1), ignore_index=-100,
                    label_smoothing=cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), 5.0)
            optimizer.step()
            with torch.no_grad():
                decay = min(cfg.ema_decay, (1 + step) / (10 + step))
                for p_ema, p in zip(ema.parameters(), network.parameters()):
                    p_ema.lerp_(p, 1.0 - decay)
            step += 1
            loss_sum += loss.item() * len(labels)
            correct += (logits.argmax(-1) == labels).sum().item()
            seen += len(labels)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        row = {"epoch": epoch, "train_loss": loss_sum / max(1, seen), "train_accuracy": correct / max(1, seen),
               "minutes": (time.time() - started) / 60}
        if epoch % cfg.eval_every_epochs == 0 or epoch == cfg.epochs:
            posteriors = final_frame_posteriors(ema, log_mel, eval_sets["validation"].waves)
            row["validation_accuracy"] = float((posteriors.argmax(1) == eval_sets["validation"].labels).mean())
            # Model selection uses validation speakers only; test speakers are never looked at here.
            if row["validation_accuracy"] >= best["accuracy"]:
                best = {"accuracy": row["validation_accuracy"], "epoch": epoch}
                best_state = copy.deepcopy(ema.state_dict())
                # A run stopped early still leaves its best model so far (replaced at the end).
                save_checkpoint(out_dir, ema, LABELS, frontend, detector,
                                {"training": {"unfinished": True, "epoch": epoch, "best": best}})
        history.append(row)
        if show_progress:
            tqdm.write(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))

    ema.load_state_dict(best_state)
    ema.eval()
    report = {"best_epoch": best.get("epoch"), "labels": list(LABELS), "splits": {}}
    for split, clip_set in (("train", train_set), *eval_sets.items()):
        posteriors = final_frame_posteriors(ema, log_mel, clip_set.waves)
        report["splits"][split] = metrics(clip_set.labels, posteriors.argmax(1), LABELS)
    minutes = (time.time() - started) / 60
    summary = {
        "data": {"folder": str(data_dir), **{f"{s}_clips": len(v) for s, v in splits.items()},
                 "train_silence_share": cfg.silence_share, "extra_unknown_clips": len(extra) if extra else 0,
                 "extra_word_clips": n_extra_words,
                 "eval_silence_clips": {s: int((v.labels == LABELS.index(SILENCE)).sum()) for s, v in eval_sets.items()}},
        "metrics": {s: {"accuracy": r["accuracy"], "clips": r["clips"]} for s, r in report["splits"].items()},
        "training": {"train": asdict(cfg), "augment": asdict(aug), "minutes": round(minutes, 2),
                     "parameters": ema.n_parameters(), "best_epoch": best.get("epoch")},
    }
    ema.cpu()
    save_checkpoint(out_dir, ema, LABELS, frontend, detector, summary)
    report["history"] = history
    (out_dir / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    _plots(out_dir, report, history)
    return TrainResult(ema, history, report)


def _plots(out_dir: Path, report: dict, history: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion = np.array(report["splits"]["validation"]["confusion"])
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(LABELS)), LABELS, rotation=60, ha="right")
    ax.set_yticks(range(len(LABELS)), LABELS)
    for (i, j), v in np.ndenumerate(confusion):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > confusion.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"validation confusion (accuracy {report['splits']['validation']['accuracy']:.3f})")
    fig.tight_layout()
    fig.savefig(out_dir / "confusion.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = [r["epoch"] for r in history]
    ax.plot(epochs, [r["train_accuracy"] for r in history], label="train (augmented)")
    val = [(r["epoch"], r["validation_accuracy"]) for r in history if "validation_accuracy" in r]
    if val:
        ax.plot(*zip(*val), marker="o", label="validation")
    ax2 = ax.twinx()
    ax2.plot(epochs, [r["train_loss"] for r in history], color="gray", linestyle=":", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax2.set_ylabel("loss")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out_dir / "training_curves.png", dpi=110)
    plt.close(fig)
