import numpy as np

from model.feature_data import FeatureSet
from model.labels import LABELS, UNKNOWN
from model.replay_bank import load_replay_bank, save_replay_bank, without_words


def test_the_bank_keeps_each_clips_word_and_a_new_word_leaves_it(tmp_path):
    """A base model heard "seven" as `_unknown_`; enrolling "seven" as a new word must not replay
    those clips as other speech, while other `_unknown_` words and the commands stay."""
    paths = ["seven/a_nohash_0.jpg", "seven/b_nohash_0.jpg", "house/c_nohash_0.jpg", "yes/d_nohash_0.jpg"]
    labels = np.array([LABELS.index(UNKNOWN)] * 3 + [LABELS.index("yes")])
    feats = np.arange(4 * 98 * 40, dtype=np.float32).reshape(4, 98, 40) % 97
    save_replay_bank(tmp_path, FeatureSet(feats, labels, np.ones(4, bool), paths), LABELS, per_label=10)
    bank = load_replay_bank(tmp_path, LABELS)
    assert sorted(bank.labels.tolist()) == sorted(labels.tolist())
    kept = without_words(bank, ["seven"])
    assert len(kept) == 2 and sorted(kept.labels.tolist()) == sorted([LABELS.index(UNKNOWN), LABELS.index("yes")])
    house = kept.feats[kept.labels == LABELS.index(UNKNOWN)][0]
    np.testing.assert_allclose(house, feats[2].astype(np.float16))
    assert len(without_words(bank, ["lights"])) == 4


def test_a_bank_written_before_words_were_kept_loses_nothing(tmp_path):
    feats = np.zeros((2, 98, 40), np.float16)
    np.savez_compressed(tmp_path / "replay_bank.npz", feats=feats, labels=np.array([10, 0], np.int16),
                        label_names=np.array(LABELS))
    bank = load_replay_bank(tmp_path, LABELS)
    assert len(without_words(bank, ["seven", UNKNOWN])) == 2
