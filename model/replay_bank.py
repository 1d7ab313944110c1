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
