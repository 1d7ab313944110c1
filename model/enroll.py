"""Enrollment: adapt a model to one user's voice and words from a few recordings, in seconds.

    takes/<word>/*.wav -> trimmed, checked, centred 1 s clips -> features (the model's frontend)
      -> augmented copies + a replay bank of the base model's training features (against forgetting)
      -> personal units added to the top GRU layer (copies of its most active units), trained with
         the output rows of the user's words; the base units and the other rows frozen
         (re-recorded built-in commands: the whole top layer adapts, then is blended back towards the
         base as far as the user's takes allow, against forgetting)
      -> an ordinary model folder (config.json records the base, the words, the takes, what changed)

Why only the top: the lower layers are general acoustic features learnt from thousands of voices;
a handful of takes cannot improve them but can easily damage them. The frozen bottom runs once over
every example (its outputs are cached), so each adaptation step costs one layer, not the network; with
personal units, the frozen base units of that layer run once too, and only the personal units step.
Why added units rather than the top layer itself: fine-tuning the whole top layer moved the base
labels' decisions for everyone (1-3 points lower on the validation speakers, docs/ENROLL.md); the
base units cannot see the added ones, so for the labels the user did not record the personal model
computes exactly the base model's logits.

A folder name outside the base model's labels becomes a new command (appended after the existing
labels, so label indices 0..11 keep their meaning); `_unknown_/` holds the user talking normally
(cut into 1 s crops of `_unknown_`).
"""
from __future__ import annotations

import copy
import math
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
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
from model.labels import LABELS, SILENCE, UNKNOWN
from model.network import RecurrentClassifier, split_unknown
# The take checks need no torch (the window checks each take as it is recorded): they live there.
from model.replay_bank import REPLAY_FILE, clip_word, load_replay_bank, without_words
from model.takes import EnrollConfig, EnrollError, Take, read_takes  # noqa: F401

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


class _Split(torch.nn.Module):
    """The network cut below its top recurrent layer: `bottom` runs once per example, frozen;
    `top` (the top GRU/LSTM/RNN layer and the output layer) is what adaptation trains.

    With `extra_units` (GRU only) the top layer gets personal units (a personal model's are reused, up
    to that many in all) and the base model's own units are frozen: their weights from the personal
    units are zero, so they compute exactly what they did. `frozen_rows` keep their output weights,
    and `open_rows` (`_unknown_`, when the user's talk is all there is to learn it from) train only
    their weights from the personal units: what the rest of the world gets stays the base model's,
    apart from the share of probability a new word takes."""

    def __init__(self, network: RecurrentClassifier, n_labels: int, unknown_index: int, extra_units: int = 0,
                 frozen_rows: tuple[int, ...] = (), open_rows: tuple[int, ...] = ()):
        super().__init__()
        cfg = network.cfg
        self.network = network
        if network.top is not None:                  # a personal model: its top layer is `top`
            base_top, below, top_name = network.top, network.rnn, "l0"
        else:
            base_top, below, top_name = network.rnn, network.rnn if cfg.n_layers > 1 else None, f"l{cfg.n_layers - 1}"
        n_old = cfg.top_size
        n_top = cfg.hidden_size + max(cfg.extra_top_units, extra_units) if extra_units else n_old
        n_frozen = cfg.hidden_size                   # the base model's own units
        self.extra_units = n_top - cfg.hidden_size
        self.personal = bool(extra_units)            # personal units beside frozen base units (else: all adapts)
        self.kept_base_share = 0.0                   # how far the adapted layer was blended back (choose_base_share)
        inputs = cfg.hidden_size if cfg.n_layers > 1 else (cfg.conv_channels or cfg.n_mels)
        cell = torch.nn.GRU if extra_units else type(base_top)
        self.top = cell(inputs, n_top, num_layers=1, batch_first=True)
        self.frozen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}   # name -> (mask of frozen entries, values)
        n_gates = {torch.nn.GRU: 3, torch.nn.LSTM: 4, torch.nn.RNN: 1}[cell]
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                new, old = getattr(self.top, f"{name}_l0"), getattr(base_top, f"{name}_{top_name}")
                if n_top == n_old and not extra_units:
                    new.copy_(old)
                    continue
                mask = torch.zeros_like(new, dtype=torch.bool)
                for gate in range(n_gates):   # PyTorch stacks the gates' rows: [r; z; n]
                    rows = slice(gate * n_top, gate * n_top + n_old)
                    old_rows = old[gate * n_old:(gate + 1) * n_old]
                    if name == "weight_hh":
                        new[rows, :n_old] = old_rows
                        new[gate * n_top:gate * n_top + n_frozen, n_old:] = 0.0
                    else:
                        new[rows] = old_rows
                    mask[gate * n_top:gate * n_top + n_frozen] = True
                self.frozen[f"top.{name}_l0"] = (mask, new.detach().clone())
        # The head keeps the base model's labels; all new words (and an earlier enrollment's) live in
        # the word head, which splits `_unknown_`'s probability (network.split_unknown).
        old, old_words = network.head, network.word_head
        self.unknown_index = unknown_index
        self.head = torch.nn.Linear(n_top, old.out_features)
        n_words = n_labels - old.out_features
        self.word_head = torch.nn.Linear(n_top, n_words + 1) if n_words else None
        with torch.no_grad():
            self.head.weight.zero_()
            self.head.weight[:, :n_old] = old.weight
            self.head.bias.copy_(old.bias)
            if self.word_head is not None:
                self.word_head.weight.zero_()   # new words' rows are set from prototypes (enroll)
                self.word_head.bias.zero_()
                if old_words is not None:
                    self.word_head.weight[:old_words.out_features, :n_old] = old_words.weight
                    self.word_head.bias[:old_words.out_features] = old_words.bias
            if extra_units:
                mask = torch.zeros_like(self.head.weight, dtype=torch.bool)
                bias_mask = torch.zeros_like(self.head.bias, dtype=torch.bool)
                for row in frozen_rows:
                    mask[row], bias_mask[row] = True, True
                for row in open_rows:
                    mask[row, :n_frozen], bias_mask[row] = True, True
                self.frozen["head.weight"] = (mask, self.head.weight.detach().clone())
                self.frozen["head.bias"] = (bias_mask, self.head.bias.detach().clone())
        # What the base model had, for blending an adapted whole top layer back towards it (WiSE-FT)
        self.base_values = ({} if extra_units else
                            {name: p.detach().clone() for name, p in self.named_parameters()
                             if name.startswith(("top.", "head."))})
        self.bottom = None
        if below is not None:
            n_below = below.num_layers if network.top is not None else cfg.n_layers - 1
            self.bottom = type(below)(below.input_size, cfg.hidden_size, num_layers=n_below, batch_first=True)
            for layer in range(n_below):
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(self.bottom, f"{name}_l{layer}").data.copy_(getattr(below, f"{name}_l{layer}").data)

    @torch.no_grad()
    def start_new_units_from(self, inputs: torch.Tensor) -> list[int]:
        """Each brand-new personal unit starts as a copy of one base unit (it reads the base units as that
        one does, so it computes the same state): those that vary most over `inputs` (the user's
        takes). Adaptation starts from features that already mean something, not from noise."""
        n_base = self.network.cfg.hidden_size
        n_old, n_top = self.network.cfg.top_size, self.top.hidden_size
        if n_top <= n_old:
            return []
        _, hidden = self(inputs)
        sources = torch.argsort(hidden[:, -1, :n_base].var(0), descending=True)[:n_top - n_old].tolist()
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            weights = getattr(self.top, f"{name}_l0")
            for gate in range(3):
                for k, source in enumerate(sources):
                    row, src = gate * n_top + n_old + k, gate * n_top + source
                    weights[row] = weights[src]
                    if name == "weight_hh":   # reads the base units as its source does; not the personal ones
                        weights[row, n_base:] = 0.0
        return sources

    @torch.no_grad()
    def blend_with_base(self, base_share: float, adapted: dict[str, torch.Tensor] | None = None) -> None:
        """Each adapted weight of the top layer and head (`adapted`, default: as they are now) moved
        `base_share` of the way back to the base model's (weight-space ensembling, WiSE-FT, Wortsman
        et al. 2022): much of the user's gain at a fraction of the forgetting, as both ends are good
        solutions in one basin."""
        params = dict(self.named_parameters())
        for name, base_value in self.base_values.items():
            start = params[name].detach().clone() if adapted is None else adapted[name]
            params[name].copy_(start * (1.0 - base_share) + base_value * base_share)

    @torch.no_grad()
    def restore_frozen(self) -> None:
        """Puts the frozen entries back after an optimiser step (weight decay and momentum move them)."""
        params = dict(self.named_parameters())
        for name, (mask, values) in self.frozen.items():
            params[name].copy_(torch.where(mask, values, params[name]))

    @torch.no_grad()
    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, T, mel] -> the top layer's input [B, T, C] (normalisation, conv, lower layers)."""
        x, _ = self.network.encode(frames)
        if self.bottom is not None:
            x, _ = self.bottom(x)
        return x

    def base_units_blind(self) -> bool:
        """Whether the base units read none of the personal units. A fresh enrollment makes them so; a
        personal model whose whole top layer was later adapted (re-recorded commands) may not be."""
        n_base, n_top = self.network.cfg.hidden_size, self.top.hidden_size
        return all(bool(self.top.weight_hh_l0[g * n_top:g * n_top + n_base, n_base:].abs().max() == 0)
                   for g in range(3))

    @torch.no_grad()
    def base_hidden(self, inputs: torch.Tensor) -> torch.Tensor:
        """[B, T, C] top-layer inputs -> the frozen base units' outputs [B, T, hidden]: they read neither
        the personal units nor any trained weight, so adaptation computes them once for every example."""
        if not self.base_units_blind():
            raise ValueError("the base units read the personal units: their outputs cannot be computed once")
        n_base = self.network.cfg.hidden_size
        return torch.cat([self.top(inputs[i:i + 256])[0][..., :n_base]
                          for i in range(0, len(inputs), 256)])

    def personal_top(self, inputs: torch.Tensor, base_hidden: torch.Tensor) -> torch.Tensor:
        """The top layer's output [B, T, n_top], as `self.top` computes it, with the frozen base units'
        outputs given (`base_hidden`): only the personal units step through time. Their gates' input
        and base-unit terms are two matrix products over all frames; each step is then a 32-unit
        recurrence, not a 160-unit one: a training step (64 clips, forward and backward) 0.025 s
        against nn.GRU's 0.058 s (benchmarks/bench_enroll_step.py), ten new words enrolled in 9 s
        against 18 s (docs/ENROLL.md "Time and size")."""
        n_base, n_top = base_hidden.shape[-1], self.top.hidden_size
        rows = torch.cat([torch.arange(g * n_top + n_base, (g + 1) * n_top) for g in range(3)])   # [r; z; n]
        weight_hh = self.top.weight_hh_l0[rows]
        from_inputs = F.linear(inputs, self.top.weight_ih_l0[rows], self.top.bias_ih_l0[rows])
        # a unit reads the state before its step: the base units' output one frame earlier
        base_before = F.pad(base_hidden[:, :-1], (0, 0, 1, 0))
        from_base = F.linear(base_before, weight_hh[:, :n_base], self.top.bias_hh_l0[rows])
        n_own = n_top - n_base
        # Few, whole-batch operations per step (Python's overhead per operation is what a small step costs)
        rz_in = (from_inputs[..., :2 * n_own] + from_base[..., :2 * n_own]).unbind(1)
        n_in, n_base_in = from_inputs[..., 2 * n_own:].unbind(1), from_base[..., 2 * n_own:].unbind(1)
        own_weights = weight_hh[:, n_base:].T
        h = inputs.new_zeros(inputs.shape[0], n_own)
        outputs = []
        for t in range(len(rz_in)):
            from_own = h @ own_weights
            r, z = torch.sigmoid(rz_in[t] + from_own[:, :2 * n_own]).chunk(2, 1)
            n = torch.tanh(n_in[t] + r * (n_base_in[t] + from_own[:, 2 * n_own:]))
            h = n + z * (h - n)   # (1 - z) n + z h
            outputs.append(h)
        return torch.cat([base_hidden, torch.stack(outputs, 1)], -1)

    def forward(self, inputs: torch.Tensor, base_hidden: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, T, C] top-layer inputs -> (logits [B, T, labels], the top layer's output); with
        `base_hidden` (personal units only) the same through `personal_top`."""
        out = self.personal_top(inputs, base_hidden) if base_hidden is not None else self.top(inputs)[0]
        logits = self.head(out)
        if self.word_head is not None:
            logits = split_unknown(logits, self.word_head(out), self.unknown_index)
        return logits, out

    def write_back(self, n_labels: int) -> RecurrentClassifier:
        """A full network with the adapted top layer and head (and `n_labels` outputs)."""
        base_cfg = self.network.cfg
        n_words = self.word_head.out_features - 1 if self.word_head is not None else 0
        cfg = replace(base_cfg, n_labels=n_labels, extra_top_units=self.extra_units, unknown_words=n_words,
                      unknown_index=self.unknown_index if n_words else -1)
        adapted = RecurrentClassifier(cfg)
        keep = {k: v for k, v in self.network.state_dict().items()
                if not k.startswith(("head.", "word_head.", "top.")) and not (cfg.extra_top_units and k.startswith("rnn.")
                                                               and k.endswith(f"_l{base_cfg.n_layers - 1}"))}
        missing, unexpected = adapted.load_state_dict(keep, strict=False)
        assert not unexpected, unexpected
        with torch.no_grad():
            top = adapted.top if adapted.top is not None else adapted.rnn
            top_name = "l0" if adapted.top is not None else f"l{cfg.n_layers - 1}"
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(top, f"{name}_{top_name}").copy_(getattr(self.top, f"{name}_l0"))
            adapted.head.weight.copy_(self.head.weight)
            adapted.head.bias.copy_(self.head.bias)
            if self.word_head is not None:
                adapted.word_head.weight.copy_(self.word_head.weight)
                adapted.word_head.bias.copy_(self.word_head.bias)
        return adapted.eval()


@dataclass
class EnrollResult:
    out_dir: Path
    labels: tuple[str, ...]
    new_words: list[str]
    used: list[Take]
    skipped: list[Take]
    seconds: float
    warnings: list[str] = field(default_factory=list)   # words not recognized on their own takes


def enroll(takes_dir: str | Path, out_dir: str | Path, base_dir: str | Path, cfg: EnrollConfig = EnrollConfig(),
           progress=None) -> EnrollResult:
    """Adapt the model in `base_dir` to the takes in `takes_dir`; write the personal model to
    `out_dir` (nothing is written if enrollment fails). `progress(fraction)` is called as it goes."""
    started = time.monotonic()
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise EnrollError(f"{out_dir} already exists and is not empty: choose another --out or remove it")
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
            bad = [t for t in skipped if t.word == word]
            raise EnrollError(f"word {word!r} has {n_good} good take(s), {cfg.min_takes} needed"
                              + (f" ({len(bad)} skipped, listed above)" if bad else ""), skipped=bad)
    new_words = [w for w in words if w not in base.labels]
    if UNKNOWN not in base.labels:
        raise EnrollError(f"{base_dir} has no {UNKNOWN} label: enrollment needs a Speech Commands model")
    labels = tuple(base.labels) + tuple(new_words)
    replay = load_replay_bank(base_dir, labels)
    if replay is None:
        raise EnrollError(f"{base_dir} has no {REPLAY_FILE} (the base model's training features that keep "
                          "enrollment from forgetting); retrain it or enroll on the shipped model")
    # The base model heard some words as other speech ("seven", "house"): replayed as `_unknown_`,
    # they would teach a new word of that name to be other speech.
    replay = without_words(replay, new_words)
    log_mel = LogMel(frontend)
    word_takes = [t for t in used if t.word != UNKNOWN]
    clips = np.stack([t.samples for t in word_takes])
    take_feats = log_mel(torch.from_numpy(clips)).numpy().astype(np.float16)
    take_labels = np.array([labels.index(t.word) for t in word_takes])
    crops = unknown_crops(used, frontend.clip_samples)
    crop_feats = (log_mel(torch.from_numpy(np.stack(crops))).numpy().astype(np.float16) if crops
                  else np.zeros((0,) + take_feats.shape[1:], np.float16))
    if progress:
        progress(0.05)
    threads = torch.get_num_threads()   # the live path runs on one thread; adapting is batch training
    torch.set_num_threads(cfg.threads)
    try:
        split = adapt(base, labels, take_feats, take_labels, crop_feats, replay, cfg, progress)
    finally:
        torch.set_num_threads(threads)
    adapted = split.write_back(len(labels))
    warnings = _unheard_words(split, take_feats, take_labels, labels)
    summary = {
        "enrollment": {
            "base_model": str(Path(base_dir).resolve()),
            "base_labels": list(base.labels),
            "words": words, "new_words": new_words,
            "takes_used": [{"word": t.word, "file": Path(t.path).name, "sound_s": round(t.sound_s, 2)} for t in used],
            "takes_skipped": [{"word": t.word, "file": Path(t.path).name, "problem": t.problem} for t in skipped],
            "adapted": _what_adapted(adapted.cfg, split.extra_units if split.personal else 0, len(new_words),
                                     split.kept_base_share),
            "kept_base_share": split.kept_base_share,
            "warnings": warnings,
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
        _extend_bank(replay, partial / REPLAY_FILE, labels, take_feats, take_labels)
        if out_dir.exists():
            out_dir.rmdir()   # empty (checked above)
        partial.rename(out_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if progress:
        progress(1.0)
    return EnrollResult(out_dir, labels, new_words, used, skipped, time.monotonic() - started, warnings)


def adapt(base, labels: tuple[str, ...], take_feats: np.ndarray, take_labels: np.ndarray, crop_feats: np.ndarray,
          replay: FeatureSet, cfg: EnrollConfig = EnrollConfig(), progress=None) -> "_Split":
    """The adaptation itself, on features: `take_feats` [N, frames, mel] of the user's words (label
    indices into `labels`, the base's labels then the new words), `crop_feats` of the user's other
    speech (may be empty). Returns the trained split network (`write_back` makes the model).
    `enroll` calls it on recordings; benchmarks/enrollment.py also on the log-mel images."""
    frontend = base.frontend
    torch.manual_seed(cfg.seed)
    sets = [FeatureSet(take_feats, take_labels, np.zeros(len(take_labels), bool), [f"take-{i}" for i in range(len(take_labels))])]
    if len(crop_feats):
        sets.append(FeatureSet(crop_feats, np.full(len(crop_feats), labels.index(UNKNOWN)), np.zeros(len(crop_feats), bool),
                               [f"unknown-{i}" for i in range(len(crop_feats))]))
    words = sorted({labels[i] for i in np.unique(take_labels)})
    new_words = [w for w in words if w not in base.labels]
    replay = without_words(replay, new_words)    # as in `enroll` (benchmarks call this directly)

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

    # Re-recorded built-in commands need the top layer's own features to move (personal units gained
    # 0.6 points on the test speakers' commands, the whole top layer 10; docs/ENROLL.md): then the whole
    # top layer adapts, at a lower rate. New words alone get personal units and the base kept exactly.
    rerecorded = [w for w in words if w in base.labels and w in LABELS]
    extra_units = cfg.extra_units if base.network.cfg.cell == "gru" and not rerecorded else 0
    learning_rate = cfg.learning_rate if extra_units else cfg.top_layer_learning_rate
    # With personal units no built-in command was recorded: the standard labels are frozen, except
    # `_unknown_`'s weights from the personal units when the user's talk is given and no new word
    # (re-enrolling an earlier enrollment's word). Words of an earlier enrollment are the user's: they train.
    recorded = set(words) | ({UNKNOWN} if len(crop_feats) and not new_words else set())
    open_rows = tuple(i for i, name in enumerate(base.labels) if name in LABELS and name in recorded)
    frozen_rows = tuple(i for i, name in enumerate(base.labels) if name in LABELS and name not in recorded)
    split = _Split(copy.deepcopy(base.network).eval(), len(labels), labels.index(UNKNOWN), extra_units,
                   frozen_rows, open_rows)
    inputs = torch.cat([split.features(all_feats[i:i + 256]) for i in range(0, len(all_feats), 256)])
    if extra_units:
        split.start_new_units_from(inputs[is_own])
    with torch.no_grad():   # a new word's row starts at its takes' mean final state (a prototype)
        _, hidden = split(inputs[is_own])
        last = hidden[:, -1]
        n_head = split.head.out_features
        for word in new_words:
            rows = all_labels[is_own] == labels.index(word)
            prototype = F.normalize(last[rows].mean(0), dim=0)
            split.word_head.weight[1 + labels.index(word) - n_head] = prototype * split.head.weight.norm(dim=1).mean()
    if progress:
        progress(0.25)

    # With personal units the base units are frozen and (as a rule) blind to them: their outputs are computed
    # once. Otherwise (a personal model whose whole top layer adapted since) nn.GRU steps the whole layer.
    base_hidden = (split.base_hidden(inputs) if split.personal and split.base_units_blind()
                   else None)
    own_index, replay_index = torch.nonzero(is_own).flatten(), torch.nonzero(~is_own).flatten()
    trainable = list(split.top.parameters()) + list(split.head.parameters())
    groups = [{"params": trainable, "peak_lr": learning_rate}]
    if split.word_head is not None:
        # New words' rows start from prototypes and must move far, whatever the layer below does: at the
        # whole-top-layer rate (re-recorded commands enrolled with them) they were under-trained.
        groups.append({"params": list(split.word_head.parameters()), "peak_lr": cfg.learning_rate})
    negative = (all_labels == labels.index(UNKNOWN)) | (all_labels == silence_index)
    delay_frames = int(round(300.0 / frontend.hop_ms))
    n_steps = cfg.personal_steps if extra_units else cfg.steps
    optimizer = torch.optim.AdamW(groups, lr=learning_rate, weight_decay=0.01)
    gen = torch.Generator().manual_seed(cfg.seed)
    for step in range(n_steps):
        for group in optimizer.param_groups:   # cosine decay
            group["lr"] = group["peak_lr"] * 0.5 * (1 + math.cos(math.pi * step / n_steps))
        half = max(1, int(round(cfg.own_share * cfg.batch_size)))
        rows = torch.cat([own_index[torch.randint(len(own_index), (half,), generator=gen)],
                          replay_index[torch.randint(len(replay_index), (cfg.batch_size - half,), generator=gen)]])
        logits, _ = split(inputs[rows], None if base_hidden is None else base_hidden[rows])
        loss = _word_loss(logits, all_labels[rows], negative[rows], delay_frames)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        split.restore_frozen()
        if progress and step % 25 == 0:
            progress(0.25 + 0.7 * step / n_steps)

    if split.base_values:
        # With new words the word head reads the adapted layer, so a fixed share cost them (mixed,
        # validation speakers: 0.950 unblended, 0.924 at 0.7); the takes' check keeps the share
        # where their new words still hold (0.2 for all five: 0.950, forgetting 4.6 -> 3.7 points).
        adapted = {name: p.detach().clone() for name, p in split.named_parameters() if name in split.base_values}
        clean = split.features(torch.from_numpy(take_feats.astype(np.float32)))
        split.kept_base_share = choose_base_share(split, clean, torch.from_numpy(take_labels), cfg, adapted)
    return split


def _word_loss(logits: torch.Tensor, labels: torch.Tensor, negative: torch.Tensor, delay_frames: int) -> torch.Tensor:
    """Cross-entropy at each example's last frame, plus, for other speech and noise, on every frame after
    `delay_frames`: a new word must not light up in the middle of something else (the detector reads
    every frame)."""
    loss = F.cross_entropy(logits[:, -1], labels, label_smoothing=0.1)
    if negative.any():
        frame_logits = logits[negative, delay_frames:]
        target = labels[negative][:, None].expand(-1, frame_logits.shape[1])
        loss = loss + 0.5 * F.cross_entropy(frame_logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
    return loss


@torch.no_grad()
def choose_base_share(split: _Split, inputs: torch.Tensor, labels: torch.Tensor, cfg: EnrollConfig,
                      adapted: dict[str, torch.Tensor] | None = None) -> float:
    """How far back to the base model the adapted top layer goes (and goes there): `cfg.keep_base_share`
    when set; otherwise the largest of `cfg.base_share_candidates` at which the user's own takes are
    still recognized as well as by the adapted layer (accuracy as high, the right word's mean
    probability within `cfg.base_share_tolerance`). A voice the base model already hears well keeps
    the base model nearly as it was; one it does not keeps what it needs of the adaptation."""
    # Built-in commands and new words are checked apart: fifty takes of new words must not hide
    # what three takes of a command lose
    n_base = split.head.out_features
    groups = [g for g in (labels < n_base, labels >= n_base) if g.any()]

    def on_takes() -> list[tuple[float, float]]:
        probs = F.softmax(split(inputs)[0][:, -1], dim=1)
        right = probs.argmax(1) == labels
        right_probability = probs[torch.arange(len(labels)), labels]
        return [(float(right[g].float().mean()), float(right_probability[g].mean())) for g in groups]

    if cfg.keep_base_share is not None:
        if cfg.keep_base_share:
            split.blend_with_base(cfg.keep_base_share)
        return cfg.keep_base_share
    if adapted is None:   # the adapted weights, as they are before any blend
        adapted = {name: p.detach().clone() for name, p in split.named_parameters() if name in split.base_values}
    before = on_takes()
    for share in sorted(cfg.base_share_candidates, reverse=True):
        split.blend_with_base(share, adapted)
        if all(accuracy >= was_accuracy and probability >= was_probability - cfg.base_share_tolerance
               for (accuracy, probability), (was_accuracy, was_probability) in zip(on_takes(), before)):
            return share
    split.blend_with_base(0.0, adapted)
    return 0.0


@torch.no_grad()
def _unheard_words(split: _Split, feats: np.ndarray, label_index: np.ndarray, labels: tuple[str, ...]) -> list[str]:
    """A line for each word the personal model does not recognize on most of its own takes, naming
    what it hears instead (a new word that sounds like a command cannot win against that command)."""
    inputs = split.features(torch.from_numpy(feats.astype(np.float32)))
    heard = split(inputs)[0][:, -1].argmax(1).numpy()
    lines = []
    for index in np.unique(label_index):
        mine = heard[label_index == index]
        if np.mean(mine == index) < 0.5:
            names, counts = np.unique(mine[mine != index], return_counts=True)
            instead = ", ".join(f"{labels[n]!r} ({c})" for n, c in sorted(zip(names, counts), key=lambda x: -x[1]))
            lines.append(f"{labels[index]!r}: {int(np.sum(mine == index))} of {len(mine)} takes are recognized as it; "
                         f"heard instead: {instead}. Record it more clearly, or choose a word that sounds less "
                         "like a command")
    return lines


def _what_adapted(net_cfg, extra_units: int, n_new: int, base_share: float) -> str:
    blended = f" (then moved {base_share:g} of the way back to the base weights)" if base_share else ""
    if extra_units:
        return (f"{extra_units} personal units added to the top {net_cfg.cell.upper()} layer (the base units "
                f"frozen), {n_new} new word(s) in a word head that splits {UNKNOWN}; the built-in labels' "
                "outputs frozen")
    return (f"the top {net_cfg.cell.upper()} layer and the output layer{blended}; {n_new} new output row(s); "
            "everything below frozen")


def _extend_bank(bank: FeatureSet, destination: Path, labels: tuple[str, ...], feats: np.ndarray,
                 label_index: np.ndarray) -> None:
    """The base bank (in `labels`' order) with `feats` [N, T, mel] (labelled `label_index`) added."""
    np.savez_compressed(destination, feats=np.concatenate([bank.feats.astype(np.float16), feats.astype(np.float16)]),
                        labels=np.concatenate([bank.labels, label_index]).astype(np.int16),
                        label_names=np.array(labels),
                        words=np.array([clip_word(p) for p in bank.paths] + [labels[i] for i in label_index]))
