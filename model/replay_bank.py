"""The replay bank: a few hundred of a model's own training clips, as float16 features, kept in its folder.

Training writes it; enrollment mixes it into a personal model's adaptation so that the base model's
words are not forgotten (docs/ENROLL.md).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from model.feature_data import FeatureSet
from model.takes import EnrollError

REPLAY_FILE = "replay_bank.npz"     # in a model folder: features the model was trained on, by label


def save_replay_bank(folder: str | Path, clips: FeatureSet, labels: tuple[str, ...], per_label: int,
                     seed: int = 0) -> Path:
    """Up to `per_label` training clips of each label, as float16 features, into a model folder."""
    rng = np.random.default_rng(seed)
    pick = np.concatenate([rng.permutation(np.flatnonzero(clips.labels == i))[:per_label]
                           for i in range(len(labels))])
    feats = clips.feats[pick].astype(np.float16)
    path = Path(folder) / REPLAY_FILE
    np.savez_compressed(path, feats=feats, labels=clips.labels[pick].astype(np.int16),
                        label_names=np.array(labels), words=np.array([clip_word(clips.paths[i]) for i in pick]))
    return path


def clip_word(path: str) -> str:
    """The word a training clip says: its folder's name (`seven/0a2b_nohash_0.jpg` -> "seven")."""
    return Path(path).parent.name


def load_replay_bank(folder: str | Path, labels: tuple[str, ...]) -> FeatureSet | None:
    path = Path(folder) / REPLAY_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as bank:
            names = tuple(str(x) for x in bank["label_names"])
            feats, bank_labels = bank["feats"], bank["labels"].astype(np.int64)
            # Which word each clip says (banks written since 2026-12-07): a new word the base model
            # learnt as `_unknown_` must not be taught as other speech again (enroll drops them).
            words = [str(w) for w in bank["words"]] if "words" in bank.files else [""] * len(bank_labels)
    except Exception as exc:   # a damaged file: zipfile, ValueError, KeyError...
        raise EnrollError(f"{path} could not be read ({type(exc).__name__})") from None
    index = np.array([labels.index(n) for n in names])    # the bank's labels in this model's order
    return FeatureSet(feats.astype(np.float16), index[bank_labels], np.ones(len(bank_labels), bool),
                      [f"{word}/replay-{i}" for i, word in enumerate(words)])


def without_words(bank: FeatureSet, words) -> FeatureSet:
    """The bank without the clips of these words (the words a user enrolls as new ones)."""
    drop = set(words)
    keep = np.array([clip_word(p) not in drop for p in bank.paths], bool)
    return FeatureSet(bank.feats[keep], bank.labels[keep], bank.from_image[keep], [p for p, k in zip(bank.paths, keep) if k])
