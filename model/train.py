"""Training on Speech Commands folders (wav or log-mel images): EMA weights, selection, reports.

    folders -> features in memory (model/feature_data.py) -> augmented batches (model/batches.py)
      -> this loop (one process, or one rank of several under torchrun) -> checkpoint + report

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
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from audio.augment import AugmentConfig
from audio.config import FrontendConfig
from audio.io import read_audio, find_audio_files, AudioReadError
from model import data, feature_data
from model.batches import BatchMaker
from model.checkpoint import load_checkpoint, save_checkpoint
from model.detector import DetectorConfig
from model.replay_bank import clip_word, save_replay_bank
from model.evaluate import feature_posteriors, metrics
from model.feature_data import FeatureSet
from model.labels import LABELS, SILENCE, UNKNOWN
from model.network import NetworkConfig, RecurrentClassifier
from model.talk_data import TalkBank, mine_hard_frames
from model.train_config import TrainConfig  # noqa: F401 (callers import it from here too)


REPLAY_PER_LABEL = 50    # training clips per label kept in the model folder for enrollment


@dataclass
class TrainResult:
    network: RecurrentClassifier
    history: list[dict] = field(default_factory=list)
    report: dict = field(default_factory=dict)


@torch.no_grad()
def _feature_stats(feats: np.ndarray, n_clips: int = 2000, transform=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-mel-bin mean and std of the training features (after `transform`, e.g. the network's PCEN)."""
    pick = torch.from_numpy(feats[:: max(1, len(feats) // n_clips)]).float()
    if transform is not None:
        pick = transform(pick)
    pick = pick.reshape(-1, pick.shape[-1])
    return pick.mean(0), pick.std(0).clamp_min(1e-3)


def load_extra_unknown(paths: list[str], frontend: FrontendConfig, max_clips: int,
                       rng: np.random.Generator) -> FeatureSet:
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
        return feature_data.empty_set(frontend)
    return FeatureSet(feature_data.wav_features(np.stack(waves), frontend),
                      np.full(len(waves), LABELS.index(UNKNOWN), np.int64), np.zeros(len(waves), bool),
                      [f"extra-unknown-{i}" for i in range(len(waves))])


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


def _distributed(device: str) -> tuple[int, int, str]:
    """(rank, world size, device) under torchrun (WORLD_SIZE set), else (0, 1, device): the same code
    path for one process and many. Gloo on CPU, NCCL on GPUs (one per local rank)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1, device
    import torch.distributed as dist
    on_gpu = device.startswith("cuda")
    if on_gpu:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if on_gpu else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def _barrier(world_size: int) -> None:
    if world_size > 1:
        import torch.distributed as dist
        dist.barrier()


def _read_data(folders: list[feature_data.DataFolder], frontend: FrontendConfig, cfg: TrainConfig,
               rng: np.random.Generator, show_progress: bool):
    """-> (training set, {evaluation split name: set}, image silence crops, summary). Wav folders give
    the splits `validation`/`test`, image folders `validation_images`/`test_images`."""
    picked = []
    has_wav_noise = any(not f.is_image and (f.root / data.NOISE_DIR).is_dir() for f in folders)
    use_image_silence = cfg.image_silence == "always" or (cfg.image_silence == "auto" and not has_wav_noise)
    for folder in folders:
        splits = folder.splits
        if cfg.max_clips:
            splits = {k: [v[i] for i in sorted(rng.permutation(len(v))[:cfg.max_clips])] for k, v in splits.items()}
        picked.append((folder, splits))
    total = sum(len(v) for _, s in picked for v in s.values())
    train_parts, eval_parts, silence_parts = [], {}, []
    summary = {}
    with tqdm(total=total, desc="reading clips", unit="clip", disable=not show_progress) as bar:
        for folder, splits in picked:
            clips, n_bad = folder.load(splits["train"], frontend, bar)
            feature_data.warn_unreadable(n_bad, len(splits["train"]), f"{folder.root} (training)")
            train_parts.append(clips)
            silence_items = folder.silence_items() if use_image_silence else []
            if cfg.max_clips:
                silence_items = silence_items[:cfg.max_clips]
            if silence_items:
                silence, n_bad = folder.load(silence_items, frontend)
                feature_data.warn_unreadable(n_bad, len(silence_items), f"{folder.root}/{feature_data.IMAGE_SILENCE_DIR}")
                silence_parts.append(silence)
            summary[str(folder.root)] = {"kind": "image" if folder.is_image else "wav",
                                         "train_clips": len(clips), "train_silence_clips": len(silence_parts[-1]) if silence_items else 0}
            for split in ("validation", "test"):
                if not splits[split]:
                    continue
                folder_split = feature_data.DataFolder(folder.root, folder.is_image, {split: splits[split]})
                clips, n_bad = feature_data.eval_features(folder_split, split, frontend, bar)
                feature_data.warn_unreadable(n_bad, len(splits[split]), f"{folder.root} ({split})")
                name = f"{split}_images" if folder.is_image else split
                eval_parts.setdefault(name, []).append(clips)
                summary[str(folder.root)][f"{split}_clips"] = len(clips)
    train_set = feature_data.concat(*train_parts, *silence_parts)
    image_silence = feature_data.concat(*silence_parts) if silence_parts else None
    eval_sets = {name: feature_data.concat(*parts) for name, parts in eval_parts.items()}
    return train_set, eval_sets, image_silence, summary


def train(data_dirs, out_dir: str | Path, net_cfg: NetworkConfig, cfg: TrainConfig,
          frontend: FrontendConfig = FrontendConfig.speech_commands_images(), aug: AugmentConfig = AugmentConfig(),
          extra_unknown: list[str] | None = None, detector: DetectorConfig = DetectorConfig(),
          show_progress: bool = True,
          extra_words: list[str] | None = None, talk: list[str] | None = None,
          init_from: str | None = None) -> TrainResult:
    """`data_dirs`: one or more Speech Commands folders, wav or log-mel images (feature_data.py).
    `extra_words`: folders of word folders (e.g. scripts/synthesize_words.py's) whose every clip
    joins training, labelled by its folder's word.
    `talk`: files or folders of command-free running speech, trained as `_unknown_` on every frame of
    sequences as long as the batch's (model/talk_data.py); the frames where the model fires on them
    are mined and trained again.
    `init_from`: a model folder of the same network whose weights training starts from (fine-tuning;
    its feature normalisation and detector settings are kept).

    Under torchrun every rank trains on its share of each batch; rank 0 alone logs, evaluates and
    writes (the other ranks return a result without a report)."""
    started = time.time()
    out_dir = Path(out_dir)
    rank, world_size, device_name = _distributed(cfg.device)
    show_progress = show_progress and rank == 0
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if net_cfg.input_norm == "pcen":   # PCEN undoes the frontend's log scale to get band power back
        net_cfg = replace(net_cfg, pcen_feature_scale=frontend.log_scale, pcen_feature_offset=frontend.log_offset)
    rng = np.random.default_rng(cfg.seed)
    if isinstance(data_dirs, (str, Path)):
        data_dirs = [data_dirs]
    folders = [feature_data.open_folder(d) for d in data_dirs]
    if any(f.is_image for f in folders):
        feature_data.check_image_frontend(frontend)
    extra_word_items = {folder: _list_extra_words(folder) for folder in extra_words or []}   # fail before reading
    unknown_paths = [Path(p) for p in extra_unknown or []]
    for path in unknown_paths:
        if not path.exists():
            raise data.DatasetError(f"extra unknown path {path} does not exist")
    for path in talk or []:
        if not Path(path).exists():
            raise data.DatasetError(f"talk path {path} does not exist")
    start = load_checkpoint(init_from) if init_from else None   # a wrong model fails before the data is read
    if start is not None and (start.frontend != frontend or tuple(start.labels) != LABELS or start.network.cfg != net_cfg):
        raise data.DatasetError(f"{init_from} has another frontend, labels or network than this training")
    train_set, eval_sets, image_silence, folder_summary = _read_data(folders, frontend, cfg, rng, show_progress)
    if not any(name.startswith("validation") for name in eval_sets):
        raise data.DatasetError("no validation clips in any data folder (validation_list.txt selects them)")
    noise = feature_data.NoiseBank.from_folders(folders, frontend, image_silence)
    n_word_clips = int((train_set.labels != LABELS.index(SILENCE)).sum())
    extra = None
    if unknown_paths:
        extra = load_extra_unknown([str(p) for p in unknown_paths], frontend,
                                   int(cfg.extra_unknown_share * n_word_clips), rng)
        train_set = feature_data.concat(train_set, extra)
    n_extra_words = 0
    for folder, items in extra_word_items.items():
        clips, n_bad = feature_data.load_wav_clips(folder, items, frontend)
        if n_bad:
            print(f"warning: {n_bad} of {len(items)} files in {folder} could not be read; "
                  "training goes on without them", file=sys.stderr)
        n_extra_words += len(clips)
        train_set = feature_data.concat(train_set, clips)

    talk_bank = None
    if talk:
        talk_bank = TalkBank.from_paths(talk, frontend)
        if show_progress:
            print(f"talk: {talk_bank.n_files} files, {talk_bank.hours:.2f} h", file=sys.stderr)
    n_words = len(cfg.word_classes)
    network = RecurrentClassifier(replace(net_cfg, n_labels=len(LABELS) + n_words, unknown_words=n_words,
                                          unknown_index=LABELS.index(UNKNOWN)) if n_words else net_cfg)
    feature_mean, feature_std = _feature_stats(train_set.feats)
    if start is not None:
        missing, _ = network.load_state_dict(start.network.state_dict(), strict=False)
        assert all(key.startswith("word_head.") for key in missing), missing
        feature_mean = network.feature_mean.clone()
        detector = start.detector     # its tuned settings stay the starting point
    else:
        mean, std = feature_mean, feature_std
        if net_cfg.input_norm == "pcen":
            mean, std = _feature_stats(train_set.feats, transform=lambda f: network.pcen(f)[0])
        network.feature_mean.copy_(mean)
        network.feature_std.copy_(std)
    ema = copy.deepcopy(network)
    # SpecAugment masks the features, so they are filled with the per-bin mean.
    maker = BatchMaker(_with_word_labels(train_set, cfg.word_classes), noise, frontend, aug, cfg.batch_size,
                       cfg.silence_share, cfg.chain_prob, cfg.chain_clips, cfg.seed, fill=feature_mean, rank=rank,
                       world_size=world_size, talk=talk_bank, talk_share=cfg.talk_share, talk_hard_share=cfg.talk_hard_share)
    device = torch.device(device_name)
    network.to(device)
    ema.to(device)
    trained = network
    if world_size > 1:
        from torch.nn.parallel import DistributedDataParallel
        trained = DistributedDataParallel(network, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(network.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    steps_per_epoch = maker.steps_per_epoch
    total_steps = steps_per_epoch * cfg.epochs
    step = 0
    history: list[dict] = []
    best = {"score": -1.0}
    best_state = copy.deepcopy(ema.state_dict())
    for epoch in range(1, cfg.epochs + 1):
        if talk_bank is not None and cfg.mine_every_epochs and (epoch - 1) % cfg.mine_every_epochs == 0 \
                and (init_from or epoch > 1):
            # Every rank mines the same frames from the same EMA weights (they are equal on all ranks).
            talk_bank.hard_ends = mine_hard_frames(_without_word_head(ema, net_cfg).eval(), talk_bank, frontend,
                                                   cfg.mine_frames)
            if show_progress:
                tqdm.write(f"mined the {len(talk_bank.hard_ends)} talk frames closest to firing")
        network.train()
        loss_sum = correct = seen = 0
        epoch_started = time.time()
        bar = tqdm(maker.epoch_batches(), total=steps_per_epoch, desc=f"epoch {epoch}/{cfg.epochs}",
                   unit="batch", disable=not show_progress, leave=False)
        for feats, labels, loss_frames, targets in bar:
            for group in optimizer.param_groups:
                group["lr"] = cfg.learning_rate * _lr_factor(step, cfg.warmup_epochs * steps_per_epoch, total_steps)
            feats = feats.to(device)
            frame_logits, _ = trained(feats)
            labels, loss_frames = labels.to(device), loss_frames.to(device)
            logits = frame_logits[:, loss_frames].reshape(-1, frame_logits.shape[-1])
            labels = labels.reshape(-1)
            loss = F.cross_entropy(logits, labels, label_smoothing=cfg.label_smoothing)
            if talk_bank is not None:
                loss = loss + cfg.talk_frame_weight * _masked_frame_loss(frame_logits, targets.to(device),
                                                                          cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), 5.0)
            optimizer.step()
            with torch.no_grad():
                decay = min(cfg.ema_decay, (1 + step) / (10 + step))
                for p_ema, p in zip(ema.parameters(), network.parameters()):
                    p_ema.lerp_(p, 1.0 - decay)
            step += 1
            scored = labels >= 0
            loss_sum += loss.item() * int(scored.sum())
            correct += (logits.argmax(-1) == labels)[scored].sum().item()
            seen += int(scored.sum())
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        row = {"epoch": epoch, "train_loss": loss_sum / max(1, seen), "train_accuracy": correct / max(1, seen),
               "minutes": (time.time() - started) / 60,
               "clips_per_s": steps_per_epoch * cfg.batch_size / max(1e-9, time.time() - epoch_started)}
        if rank == 0 and (epoch % cfg.eval_every_epochs == 0 or epoch == cfg.epochs):
            # Model selection uses validation speakers only: accuracy pooled over the validation sets'
            # clips (the mean of the sets' figures let the 389 wav clips outweigh 4,954 image clips:
            # v6 kept epoch 18 over a final epoch 0.3 points better on the images); test speakers are
            # never looked at here.
            n_right, n_clips = 0, 0
            saved = _without_word_head(ema, net_cfg)
            for name, clip_set in eval_sets.items():
                if name.startswith("validation"):
                    right = feature_posteriors(saved, clip_set.feats).argmax(1) == clip_set.labels
                    row[f"{name}_accuracy"] = float(right.mean())
                    n_right, n_clips = n_right + int(right.sum()), n_clips + len(right)
            score = n_right / max(1, n_clips)
            row["selection_score"] = score
            if talk_bank is not None:
                # Clip accuracy does not see false alarms: each epoch is kept, to be chosen on validation
                # streams and validation talk (`speechcmd det`).
                save_checkpoint(out_dir / "epochs" / f"epoch{epoch:02d}", saved, LABELS, frontend, detector,
                                {"training": {"epoch": epoch, "selection_score": score},
                                 "metrics": {name: {"accuracy": row[f"{name}_accuracy"], "clips": len(clip_set)}
                                             for name, clip_set in eval_sets.items() if name.startswith("validation")}})
            if score >= best["score"]:
                best = {"score": score, "epoch": epoch}
                best_state = copy.deepcopy(ema.state_dict())
                # A run stopped early still leaves its best model so far (replaced at the end).
                save_checkpoint(out_dir, saved, LABELS, frontend, detector,
                                {"training": {"unfinished": True, "epoch": epoch, "best": best,
                                              "world_size": world_size}})
        _barrier(world_size)
        history.append(row)
        if show_progress:
            tqdm.write(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))

    if rank != 0:
        _barrier(world_size)
        return TrainResult(ema, history, {})
    ema.load_state_dict(best_state)
    ema = _without_word_head(ema, net_cfg).eval()
    report = {"best_epoch": best.get("epoch"), "labels": list(LABELS), "splits": {}}
    # The training figure on at most 5000 clips: 47k clips would take minutes and say little.
    pick = np.sort(rng.permutation(len(train_set))[:5000])
    train_sample = FeatureSet(train_set.feats[pick], train_set.labels[pick], train_set.from_image[pick],
                              [train_set.paths[i] for i in pick])
    for split, clip_set in (("train", train_sample), *eval_sets.items()):
        posteriors = feature_posteriors(ema, clip_set.feats)
        report["splits"][split] = metrics(clip_set.labels, posteriors.argmax(1), LABELS)
    minutes = (time.time() - started) / 60
    summary = {
        "data": {"folders": folder_summary, "train_clips": len(train_set),
                 **{f"{s}_clips": len(v) for s, v in eval_sets.items()},
                 "train_silence_share": cfg.silence_share, "extra_unknown_clips": len(extra) if extra else 0,
                 "extra_word_clips": n_extra_words,
                 "eval_silence_clips": {s: int((v.labels == LABELS.index(SILENCE)).sum()) for s, v in eval_sets.items()}},
        "metrics": {s: {"accuracy": r["accuracy"], "clips": r["clips"]} for s, r in report["splits"].items()},
        "training": {"train": asdict(cfg), "augment": asdict(aug), "minutes": round(minutes, 2),
                     "parameters": ema.n_parameters(), "best_epoch": best.get("epoch"), "world_size": world_size,
                     "clips_per_s": round(float(np.median([r["clips_per_s"] for r in history])), 1)},
    }
    ema.cpu()
    save_checkpoint(out_dir, ema, LABELS, frontend, detector, summary)
    # A sample of the training features, so that `speechcmd enroll` can adapt this model without
    # forgetting (with generated silence: a wav folder has no silence clips of its own).
    silence = maker.silence(REPLAY_PER_LABEL).numpy().astype(np.float16)
    generated = FeatureSet(silence, np.full(len(silence), LABELS.index(SILENCE)), np.zeros(len(silence), bool),
                           [f"silence-{i}" for i in range(len(silence))])
    save_replay_bank(out_dir, feature_data.concat(train_set, generated), LABELS, REPLAY_PER_LABEL, cfg.seed)
    report["history"] = history
    (out_dir / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    _plots(out_dir, report, history)
    _barrier(world_size)
    return TrainResult(ema, history, report)


def _with_word_labels(clips: FeatureSet, words: tuple[str, ...]) -> FeatureSet:
    """The `_unknown_` clips of `words` (by folder name) labelled len(LABELS) + k, as the word head reads them."""
    if not words:
        return clips
    labels = clips.labels.copy()
    folder = np.array([clip_word(p) for p in clips.paths])
    for k, word in enumerate(words):
        clips_of_word = (folder == word) & (labels == LABELS.index(UNKNOWN))
        if not clips_of_word.any():   # a typo would otherwise train for an hour without the word
            raise data.DatasetError(f"--word-classes: no training clip of {word!r} (a word folder of the data "
                                    "whose clips are _unknown_, e.g. 'dog')")
        labels[clips_of_word] = len(LABELS) + k
    return FeatureSet(clips.feats, labels, clips.from_image, clips.paths)


def _without_word_head(network: RecurrentClassifier, net_cfg: NetworkConfig) -> RecurrentClassifier:
    """The 12-label network a training word head folds into: `_unknown_` keeps the sum of the words'
    probability (split_unknown leaves every other label's probability as the head gives it)."""
    if network.word_head is None:
        return network
    folded = RecurrentClassifier(net_cfg).to(network.head.weight.device)
    folded.load_state_dict({k: v for k, v in network.state_dict().items() if not k.startswith("word_head.")})
    return folded


def _masked_frame_loss(frame_logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Cross-entropy over the frames whose target is not -100 (0 when there are none)."""
    flat = targets.reshape(-1)
    per_frame = F.cross_entropy(frame_logits.reshape(-1, frame_logits.shape[-1]), flat.clamp_min(0),
                                reduction="none", label_smoothing=label_smoothing)
    keep = (flat >= 0).float()
    return (per_frame * keep).sum() / keep.sum().clamp_min(1.0)


def _plots(out_dir: Path, report: dict, history: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name = next((s for s in report["splits"] if s.startswith("validation")), "train")
    confusion = np.array(report["splits"][name]["confusion"])
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
    ax.set_title(f"{name} confusion (accuracy {report['splits'][name]['accuracy']:.3f})")
    fig.tight_layout()
    fig.savefig(out_dir / "confusion.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = [r["epoch"] for r in history]
    ax.plot(epochs, [r["train_accuracy"] for r in history], label="train (augmented)")
    for key in sorted({k for r in history for k in r if k.startswith("validation") and k.endswith("_accuracy")}):
        val = [(r["epoch"], r[key]) for r in history if key in r]
        ax.plot(*zip(*val), marker="o", label=key.removesuffix("_accuracy").replace("_", " "))
    ax2 = ax.twinx()
    ax2.plot(epochs, [r["train_loss"] for r in history], color="gray", linestyle=":", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax2.set_ylabel("loss")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out_dir / "training_curves.png", dpi=110)
    plt.close(fig)
