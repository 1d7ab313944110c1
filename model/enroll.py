"""Enrollment: adapt a model to one user's voice and words from a few recordings, in seconds.

    takes/<word>/*.wav -> trimmed, checked, centred 1 s clips -> features (the model's frontend)
      -> augmented copies + a replay bank of the base model's training features (against forgetting)
      -> fine-tune the top recurrent layer and the output layer; a new word gets a new output row
      -> an ordinary model folder (config.json records the base, the words, the takes, what changed)

Why only the top: the lower layers are general acoustic features learnt from thousands of voices;
a handful of takes cannot improve them but can easily damage them. The frozen bottom runs once over
every example (its outputs are cached), so each adaptation step costs one layer, not the network.

A folder name outside the base model's labels becomes a new command (appended after the existing
labels, so label indices 0..11 keep their meaning); `_unknown_/` holds the user talking normally
(cut into 1 s crops of `_unknown_`).
"""
from __future__ import annotations

import copy
import math
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from audio import augment
from audio.augment import AugmentConfig
from audio.features import LogMel
from model.batches import BatchMaker
from model.checkpoint import load_checkpoint, save_checkpoint
from model.feature_data import FeatureSet, NoiseBank, concat
from model.labels import SILENCE, UNKNOWN
from model.network import RecurrentClassifier
# The take checks need no torch (the window checks each take as it is recorded): they live there.
from model.takes import EnrollConfig, EnrollError, Take, read_takes  # noqa: F401

REPLAY_FILE = "replay_bank.npz"     # in a model folder: features the model was trained on, by label
MAX_UNKNOWN_CROPS = 200             # 1 s crops taken from the `_unknown_` recordings at most


def unknown_crops(takes: list[Take], clip_samples: int) -> list[np.ndarray]:
    """1 s crops every half second of the `_unknown_` recordings (the user talking normally)."""
    crops = []
    for take in takes:
        if take.word == UNKNOWN and take.problem is None:
            for start in range(0, max(1, take.samples.size - clip_samples + 1), clip_samples // 2):
                crop = take.samples[start:start + clip_samples]
                if crop.size == clip_samples and np.sqrt(np.mean(crop ** 2)) > 1e-3:
                    crops.append(crop.astype(np.float32))
    if len(crops) > MAX_UNKNOWN_CROPS:   # an hour of talk would be 7,000 crops: a spread-out sample is enough
        crops = [crops[i] for i in np.linspace(0, len(crops) - 1, MAX_UNKNOWN_CROPS).astype(int)]
    return crops


def save_replay_bank(folder: str | Path, clips: FeatureSet, labels: tuple[str, ...], per_label: int,
                     seed: int = 0) -> Path:
    """Up to `per_label` training clips of each label, as float16 features, into a model folder."""
    rng = np.random.default_rng(seed)
    pick = np.concatenate([rng.permutation(np.flatnonzero(clips.labels == i))[:per_label]
                           for i in range(len(labels))])
    feats = clips.feats[pick].astype(np.float16)
    path = Path(folder) / REPLAY_FILE
    np.savez_compressed(path, feats=feats, labels=clips.labels[pick].astype(np.int16),
                        label_names=np.array(labels))
    return path


def load_replay_bank(folder: str | Path, labels: tuple[str, ...]) -> FeatureSet | None:
    path = Path(folder) / REPLAY_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as bank:
            names = tuple(str(x) for x in bank["label_names"])
            feats, bank_labels = bank["feats"], bank["labels"].astype(np.int64)
    except Exception as exc:   # a damaged file: zipfile, ValueError, KeyError...
        raise EnrollError(f"{path} could not be read ({type(exc).__name__})") from None
    index = np.array([labels.index(n) for n in names])    # the bank's labels in this model's order
    return FeatureSet(feats.astype(np.float16), index[bank_labels], np.ones(len(bank_labels), bool),
                      [f"replay-{i}" for i in range(len(bank_labels))])


class _Split(torch.nn.Module):
    """The network cut below its top recurrent layer: `bottom` runs once per example, frozen;
    `top` (the last GRU/LSTM/RNN layer and the output layer) is what adaptation trains."""

    def __init__(self, network: RecurrentClassifier, n_labels: int):
        super().__init__()
        cfg = network.cfg
        self.network = network
        cell = type(network.rnn)
        top = cfg.n_layers - 1
        inputs = cfg.hidden_size if cfg.n_layers > 1 else (cfg.conv_channels or cfg.n_mels)
        self.top = cell(inputs, cfg.hidden_size, num_layers=1, batch_first=True)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(self.top, f"{name}_l0").data.copy_(getattr(network.rnn, f"{name}_l{top}").data)
        self.head = torch.nn.Linear(cfg.hidden_size, n_labels)
        old = network.head
        with torch.no_grad():
            self.head.weight.zero_()
            self.head.bias.fill_(-5.0)   # a new word starts unlikely; its row is set from prototypes
            self.head.weight[:old.out_features] = old.weight
            self.head.bias[:old.out_features] = old.bias
        if cfg.n_layers > 1:
            self.bottom = cell(cfg.conv_channels or cfg.n_mels, cfg.hidden_size, num_layers=cfg.n_layers - 1,
                               batch_first=True)
            for layer in range(cfg.n_layers - 1):
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(self.bottom, f"{name}_l{layer}").data.copy_(getattr(network.rnn, f"{name}_l{layer}").data)
        else:
            self.bottom = None

    @torch.no_grad()
    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, T, mel] -> the top layer's input [B, T, C] (normalisation, conv, lower layers)."""
        x, _ = self.network.encode(frames)
        if self.bottom is not None:
            x, _ = self.bottom(x)
        return x

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, _ = self.top(inputs)
        return self.head(out), out

    def write_back(self, n_labels: int) -> RecurrentClassifier:
        """A full network with the adapted top layer and head (and `n_labels` outputs)."""
        cfg = replace(self.network.cfg, n_labels=n_labels)
        adapted = RecurrentClassifier(cfg)
        state = {k: v for k, v in self.network.state_dict().items() if not k.startswith("head.")}
        adapted.load_state_dict(state, strict=False)
        top = cfg.n_layers - 1
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(adapted.rnn, f"{name}_l{top}").copy_(getattr(self.top, f"{name}_l0"))
            adapted.head.weight.copy_(self.head.weight)
            adapted.head.bias.copy_(self.head.bias)
        return adapted.eval()


@dataclass
class EnrollResult:
    out_dir: Path
    labels: tuple[str, ...]
    new_words: list[str]
    used: list[Take]
    skipped: list[Take]
    seconds: float


def enroll(takes_dir: str | Path, out_dir: str | Path, base_dir: str | Path, cfg: EnrollConfig = EnrollConfig(),
           progress=None) -> EnrollResult:
    """Adapt the model in `base_dir` to the takes in `takes_dir`; write the personal model to
    `out_dir` (nothing is written if enrollment fails). `progress(fraction)` is called as it goes."""
    started = time.monotonic()
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise EnrollError(f"{out_dir} already exists and is not empty: choose another --out or remove it")
    torch.manual_seed(cfg.seed)
    base = load_checkpoint(base_dir)
    frontend = base.frontend
    takes = read_takes(takes_dir, cfg, frontend.sample_rate_hz, frontend.clip_samples)
    used = [t for t in takes if t.problem is None]
    skipped = [t for t in takes if t.problem is not None]
    words = sorted({t.word for t in takes if t.word != UNKNOWN})
    if not words:
        raise EnrollError(f"{takes_dir} has no word folders (only {UNKNOWN}/)")
    for word in words:
        n_good = sum(t.word == word for t in used)
        if n_good < cfg.min_takes:
            raise EnrollError(f"word {word!r} has {n_good} good take(s), {cfg.min_takes} needed "
                              f"(see the skipped takes above)")
    new_words = [w for w in words if w not in base.labels]
    labels = tuple(base.labels) + tuple(new_words)
    replay = load_replay_bank(base_dir, labels)
    if replay is None:
        raise EnrollError(f"{base_dir} has no {REPLAY_FILE} (the base model's training features that keep "
                          "enrollment from forgetting); retrain it or enroll on the shipped model")
    log_mel = LogMel(frontend)
    word_takes = [t for t in used if t.word != UNKNOWN]
    clips = np.stack([t.samples for t in word_takes])
    take_feats = log_mel(torch.from_numpy(clips)).numpy().astype(np.float16)
    take_labels = np.array([labels.index(t.word) for t in word_takes])
    sets = [FeatureSet(take_feats, take_labels, np.zeros(len(word_takes), bool), [t.path for t in word_takes])]
    crops = unknown_crops(used, frontend.clip_samples)
    if crops:
        sets.append(FeatureSet(log_mel(torch.from_numpy(np.stack(crops))).numpy().astype(np.float16),
                               np.full(len(crops), labels.index(UNKNOWN)), np.zeros(len(crops), bool),
                               [f"unknown-{i}" for i in range(len(crops))]))
    if progress:
        progress(0.05)

    # The examples, made once: each take and crop many times over, augmented; the replay bank as is
    # apart from light augmentation. Silence comes from the bank's `_silence_` clips.
    rng = np.random.default_rng(cfg.seed)
    silence_index = labels.index(SILENCE)
    bank_silence = replay.feats[replay.labels == silence_index]
    noise = NoiseBank([[augment.to_power(torch.from_numpy(f).float(), frontend) for f in bank_silence]], frontend)
    own = concat(*sets)
    examples_feats, examples_labels = [], []
    fill = torch.from_numpy(replay.feats.astype(np.float32).reshape(-1, frontend.n_mels).mean(0))
    maker = BatchMaker(own, noise, frontend, AugmentConfig(), cfg.batch_size, 0.0, 0.0, 1, cfg.seed, fill)
    for _ in range(cfg.copies_per_take):
        feats, batch_labels, _, _ = maker.make(np.arange(len(own)))
        examples_feats.append(feats)
        examples_labels.append(batch_labels[:, 0])
    light = AugmentConfig(stretch_min=0.95, stretch_max=1.05, warp_min=0.97, warp_max=1.03, reverb_prob=0.0,
                          time_masks=0, freq_masks=0)
    pick = rng.permutation(len(replay))[:cfg.replay_clips]
    replay_set = FeatureSet(replay.feats[pick], replay.labels[pick], replay.from_image[pick], [])
    replay_maker = BatchMaker(replay_set, noise, frontend, light, cfg.batch_size, 0.0, 0.0, 1, cfg.seed, fill)
    feats, batch_labels, _, _ = replay_maker.make(np.arange(len(replay_set)))
    n_own = sum(len(f) for f in examples_feats)
    all_feats = torch.cat(examples_feats + [feats])
    all_labels = torch.cat(examples_labels + [batch_labels[:, 0]])
    is_own = torch.arange(len(all_labels)) < n_own
    if progress:
        progress(0.15)

    split = _Split(copy.deepcopy(base.network).eval(), len(labels))
    inputs = torch.cat([split.features(all_feats[i:i + 256]) for i in range(0, len(all_feats), 256)])
    with torch.no_grad():   # a new word's row starts at its takes' mean final state (a prototype)
        _, hidden = split(inputs[is_own])
        last = hidden[:, -1]
        for word in new_words:
            rows = all_labels[is_own] == labels.index(word)
            prototype = F.normalize(last[rows].mean(0), dim=0)
            split.head.weight[labels.index(word)] = prototype * split.head.weight[:len(base.labels)].norm(dim=1).mean()
            split.head.bias[labels.index(word)] = 0.0
    if progress:
        progress(0.25)

    n_base = len(base.labels)
    own_index, replay_index = torch.nonzero(is_own).flatten(), torch.nonzero(~is_own).flatten()
    if cfg.distill_weight:
        # What the base model itself says about the replay clips, before any adaptation: keeping the
        # adapted model's old-label posteriors close to these is Learning without Forgetting's idea.
        with torch.no_grad():
            teacher = torch.cat([split(inputs[replay_index[i:i + 256]])[0][:, -1, :n_base]
                                 for i in range(0, len(replay_index), 256)])
            teacher_probs = torch.zeros(len(all_labels), n_base)
            teacher_probs[replay_index] = F.softmax(teacher / cfg.distill_temperature, dim=1)
    anchors = [p.detach().clone() for p in split.top.parameters()] if cfg.anchor_weight else []
    trainable = (list(split.top.parameters()) if cfg.adapt_top_layer else []) + list(split.head.parameters())
    optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=0.01)
    gen = torch.Generator().manual_seed(cfg.seed)
    negative = (all_labels == labels.index(UNKNOWN)) | (all_labels == silence_index)
    delay_frames = int(round(300.0 / frontend.hop_ms))
    for step in range(cfg.steps):
        for group in optimizer.param_groups:   # cosine decay
            group["lr"] = cfg.learning_rate * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        half = max(1, int(round(cfg.own_share * cfg.batch_size)))
        rows = torch.cat([own_index[torch.randint(len(own_index), (half,), generator=gen)],
                          replay_index[torch.randint(len(replay_index), (cfg.batch_size - half,), generator=gen)]])
        logits, _ = split(inputs[rows])
        loss = F.cross_entropy(logits[:, -1], all_labels[rows], label_smoothing=0.1)
        # Other speech and noise read as such on every frame, not only the last: a new word must not
        # light up in the middle of something else (the detector reads every frame).
        neg = negative[rows]
        if neg.any():
            frame_logits = logits[neg, delay_frames:]
            target = all_labels[rows][neg][:, None].expand(-1, frame_logits.shape[1])
            loss = loss + 0.5 * F.cross_entropy(frame_logits.reshape(-1, len(labels)), target.reshape(-1))
        if cfg.distill_weight:
            from_bank = ~is_own[rows]
            t = cfg.distill_temperature
            student = F.log_softmax(logits[from_bank, -1, :n_base] / t, dim=1)
            loss = loss + cfg.distill_weight * t * t * F.kl_div(student, teacher_probs[rows][from_bank],
                                                                reduction="batchmean")
        if anchors:
            loss = loss + cfg.anchor_weight * sum(((p - p0) ** 2).sum() for p, p0 in zip(split.top.parameters(), anchors))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress and step % 25 == 0:
            progress(0.25 + 0.7 * step / cfg.steps)

    adapted = split.write_back(len(labels))
    summary = {
        "enrollment": {
            "base_model": str(Path(base_dir).resolve()),
            "base_labels": list(base.labels),
            "words": words, "new_words": new_words,
            "takes_used": [{"word": t.word, "file": Path(t.path).name, "sound_s": round(t.sound_s, 2)} for t in used],
            "takes_skipped": [{"word": t.word, "file": Path(t.path).name, "problem": t.problem} for t in skipped],
            "adapted": (f"the top {adapted.cfg.cell.upper()} layer and the output layer" if cfg.adapt_top_layer
                        else "the output layer") + f"; {len(new_words)} new output row(s); everything below frozen",
            "settings": asdict(cfg),
            "seconds": round(time.monotonic() - started, 1),
        },
        "base_metrics": base.extra.get("metrics", {}),
    }
    # Written next to the destination, then renamed: a failure leaves nothing half-written behind.
    partial = out_dir.with_name(out_dir.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    try:
        save_checkpoint(partial, adapted, labels, frontend, base.detector, summary)
        # The personal model can be enrolled on again: it carries the bank, plus the user's own takes,
        # so that a later enrollment replays these words too (labels stored by name).
        _extend_bank(Path(base_dir) / REPLAY_FILE, partial / REPLAY_FILE, labels, take_feats, take_labels)
        if out_dir.exists():
            out_dir.rmdir()   # empty (checked above)
        partial.rename(out_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if progress:
        progress(1.0)
    return EnrollResult(out_dir, labels, new_words, used, skipped, time.monotonic() - started)


def _extend_bank(source: Path, destination: Path, labels: tuple[str, ...], feats: np.ndarray,
                 label_index: np.ndarray) -> None:
    """The base bank with `feats` [N, T, mel] (labelled `label_index` into `labels`) added."""
    with np.load(source, allow_pickle=False) as bank:
        names = [str(x) for x in bank["label_names"]]
        old_feats, old_labels = bank["feats"], bank["labels"].astype(np.int64)
    remap = np.array([labels.index(n) for n in names])
    np.savez_compressed(destination, feats=np.concatenate([old_feats.astype(np.float16), feats.astype(np.float16)]),
                        labels=np.concatenate([remap[old_labels], label_index]).astype(np.int16),
                        label_names=np.array(labels))
