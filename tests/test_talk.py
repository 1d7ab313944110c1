"""Running speech as training negatives (model/talk_data.py, batches' talk rows) and the DET sweep."""
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from audio.config import FrontendConfig
from audio.features import LogMel
from audio.io import read_audio
from conftest import DATA_DIR, make_dataset, run_cli
from model.det import headline
from model.labels import LABELS
from model.network import RecurrentClassifier
from model.talk_data import TalkBank, mine_hard_frames
from test_train import QUIET, TINY, TINY_NET

TALK_DIR = DATA_DIR / "talk"
FRONTEND = FrontendConfig.speech_commands_images()


def test_talk_bank_holds_the_files_frames_and_crops_end_at_mined_frames():
    bank = TalkBank.from_paths([str(TALK_DIR)], FRONTEND)
    samples = read_audio(TALK_DIR / "coffee_order_train_0.wav", FRONTEND.sample_rate_hz)
    expected = LogMel(FRONTEND)(torch.from_numpy(samples)).numpy()
    assert bank.n_files == 1 and bank.feats.shape == expected.shape
    assert np.abs(bank.feats.astype(np.float32) - expected).max() < 0.1   # float16
    rng = np.random.default_rng(0)
    crops = bank.crops(16, 98, rng)
    assert crops.shape == (16, 98, FRONTEND.n_mels)
    bank.hard_ends = np.array([400])
    ends = []
    for crop in bank.crops(8, 98, rng, hard_share=1.0):
        # Where in the bank each crop came from: its first frame is unique in real speech.
        start = int(np.flatnonzero((bank.feats == crop[0]).all(1))[0])
        ends.append(start + 97)
    assert all(400 <= end < 430 for end in ends)


def _network_that_says(label: str) -> RecurrentClassifier:
    network = RecurrentClassifier(TINY_NET).eval()
    with torch.no_grad():
        network.head.weight.zero_()
        network.head.bias.fill_(-10.0)
        network.head.bias[LABELS.index(label)] = 10.0
    return network


class _LoudMeansStop(torch.nn.Module):
    """Logits where `stop` rises with the first mel band: it "fires" where the talk is loud there."""
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.2))

    def forward(self, feats, state=None):
        logits = torch.zeros(*feats.shape[:2], len(LABELS))
        logits[..., LABELS.index("stop")] = self.scale * feats[..., 0]
        return logits, state


def test_mining_finds_the_frames_closest_to_firing():
    bank = TalkBank(np.zeros((6000, FRONTEND.n_mels), np.float16), 1)
    bank.feats[1000:1030, 0] = 20.0      # the model comes close to "stop" here...
    bank.feats[4000:4030, 0] = 30.0      # ...and closer here
    # A frame of the closest stretch first: one whose 250 ms average (frames up to it) lies inside it.
    assert 4024 <= mine_hard_frames(_LoudMeansStop(), bank, FRONTEND, n_hard=1, chunk_frames=3000)[0] <= 4029
    first, second = mine_hard_frames(_LoudMeansStop(), bank, FRONTEND, n_hard=2, chunk_frames=3000)
    assert 1024 <= first <= 1029 and 4024 <= second <= 4029
    more = mine_hard_frames(_LoudMeansStop(), bank, FRONTEND, n_hard=50, chunk_frames=3000)
    assert 2 < len(more) <= 50 and np.diff(more).min() >= 10 and more.max() < len(bank.feats)
    assert len(mine_hard_frames(_LoudMeansStop(), bank, FRONTEND, n_hard=0)) == 0


def test_training_on_talk_teaches_the_model_that_talk_is_unknown(tmp_path):
    from model.train import train
    from model.tune import stream_posteriors
    from model.checkpoint import load_checkpoint
    data = make_dataset(tmp_path / "sc")
    cfg = replace(TINY, epochs=15, talk_share=1.0, talk_frame_weight=2.0, mine_every_epochs=0)
    train(data, tmp_path / "plain", TINY_NET, cfg, frontend=FRONTEND, aug=QUIET, show_progress=False)
    train(data, tmp_path / "talk", TINY_NET, cfg, frontend=FRONTEND, aug=QUIET, show_progress=False,
          talk=[str(TALK_DIR)])
    samples = read_audio(TALK_DIR / "coffee_order_train_0.wav", FRONTEND.sample_rate_hz)
    unknown = {name: stream_posteriors(load_checkpoint(tmp_path / name), samples)[:, LABELS.index("_unknown_")].mean()
               for name in ("plain", "talk")}
    assert unknown["talk"] > 0.8 and unknown["talk"] > unknown["plain"] + 0.2
    # Each epoch is kept for a choice on validation talk.
    assert (tmp_path / "talk" / "epochs" / "epoch15" / "model.safetensors").exists()
    # Fine-tuning starts from a model's weights; another network is refused in one line.
    out = run_cli("train", "--data", str(data), "--out", str(tmp_path / "bad"), "--quiet", "--init",
                  str(tmp_path / "talk"), "--epochs", "1")
    assert out.returncode == 1 and "another frontend, labels or network" in out.stderr
    assert "Traceback" not in out.stderr
    out = run_cli("train", "--data", str(data), "--out", str(tmp_path / "bad"), "--quiet", "--talk",
                  str(tmp_path / "no_such_talk"))
    assert out.returncode == 1 and "talk path" in out.stderr and "Traceback" not in out.stderr


def test_headline_reads_the_sweep_at_the_rate_and_the_share_asked_for():
    rows = [{"threshold": 0.5, "found_pct": 97.0, "alarms_per_hour": 12.0},
            {"threshold": 0.7, "found_pct": 95.5, "alarms_per_hour": 3.0},
            {"threshold": 0.8, "found_pct": 90.0, "alarms_per_hour": 1.0},
            {"threshold": 0.9, "found_pct": 70.0, "alarms_per_hour": 0.0}]
    h = headline(rows)
    assert h["found_pct_at_1_per_hour"] == 90.0 and h["threshold_at_1_per_hour"] == 0.8
    assert h["alarms_per_hour_at_95_pct"] == 3.0 and h["threshold_at_95_pct"] == 0.7
    assert headline(rows, max_alarms_per_hour=-1)["found_pct_at_-1_per_hour"] is None


def test_det_sweeps_the_shipped_detector_and_writes_the_chosen_threshold(tmp_path, shipped_model):
    model = shipped_model
    data = make_dataset(tmp_path / "sc")
    folder = tmp_path / "model"
    shutil.copytree(model.path, folder)
    out = run_cli("det", "--model", str(folder), "--data", str(data), "--split", "validation", "--streams", "1",
                  "--seconds", "30", "--talk", str(TALK_DIR), "--json", "--plot", str(tmp_path / "det.png"),
                  "--max-alarms-per-hour", "1000")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)[str(folder)]
    rows = result["rows"]
    assert result["talk_hours"][str(TALK_DIR)] == pytest.approx(len(read_audio(TALK_DIR / "coffee_order_train_0.wav", 16000))
                                                         / 16000 / 3600, rel=1e-3)
    assert [r["threshold"] for r in rows] == sorted(r["threshold"] for r in rows)
    # A higher threshold never fires more on talk, nor finds more words.
    assert all(a["alarms"] >= b["alarms"] for a, b in zip(rows, rows[1:]))
    assert all(a["found_pct"] >= b["found_pct"] for a, b in zip(rows, rows[1:]))
    assert (tmp_path / "det.png").stat().st_size > 0
    chosen = result["headline"]["threshold_at_1000_per_hour"]
    out = run_cli("det", "--model", str(folder), "--data", str(data), "--split", "validation", "--streams", "1",
                  "--seconds", "30", "--talk", str(TALK_DIR), "--max-alarms-per-hour", "1000", "--write")
    assert out.returncode == 0, out.stderr
    assert json.loads((folder / "config.json").read_text())["detector"]["threshold"] == chosen
    out = run_cli("det", "--model", str(folder), "--talk", str(tmp_path / "nothing_here"))
    assert out.returncode == 1 and "Traceback" not in out.stderr


def test_pauses_in_talk_are_found_and_left_untrained():
    from model.batches import pause_frames
    bank = TalkBank.from_paths([str(TALK_DIR)], FRONTEND)
    crop = torch.from_numpy(bank.feats[100:400]).float()[None].clone()
    crop[0, 120:160] = FRONTEND.silence_feature        # 400 ms of digital silence inside the talk
    pauses = pause_frames(crop, FRONTEND)[0]
    assert pauses[120:160].all()
    assert pauses.float().mean() < 0.5                  # the rest is mostly speech


def test_frames_drowned_by_added_noise_are_found():
    from audio import augment
    from model.batches import drowned_frames
    clean = torch.full((1, 10, FRONTEND.n_mels), 60.0)
    power = augment.to_power(clean, FRONTEND)
    louder = power.clone()
    louder[0, :5] *= 2.0            # noise as loud as the sound on the first five frames
    louder[0, 5:] *= 1.3            # under a third of the sound's power on the rest
    drowned = drowned_frames(clean, augment.from_power(louder, FRONTEND), FRONTEND)[0]
    assert drowned[:5].all() and not drowned[5:].any()


def test_batches_get_talk_rows_untrained_where_talk_is_not_heard(tmp_path):
    from audio.augment import AugmentConfig
    from model import feature_data
    from model.batches import BatchMaker
    folder = feature_data.open_folder(make_dataset(tmp_path / "sc"))
    clips, _ = folder.load(folder.splits["train"], FRONTEND)
    noise = feature_data.NoiseBank.from_folders([folder], FRONTEND)
    bank = TalkBank.from_paths([str(TALK_DIR)], FRONTEND)
    bank.feats[200:300] = FRONTEND.silence_feature          # a pause in the talk
    bank.hard_ends = np.array([250])                       # every talk row ends in it
    maker = BatchMaker(clips, noise, FRONTEND, AugmentConfig(noise_prob=0.0, reverb_prob=0.0), 4, 0.0, 0.0, 1, seed=0,
                       fill=torch.zeros(FRONTEND.n_mels), talk=bank, talk_share=1.0, talk_hard_share=1.0)
    feats, labels, loss_frames, targets = maker.make(np.arange(4))
    assert feats.shape[0] == 8 and targets.shape == feats.shape[:2]
    assert (targets[:4] == -100).all()                     # clip rows: the clip-end loss only
    talk_targets = targets[4:]
    unknown = LABELS.index("_unknown_")
    assert ((talk_targets == unknown) | (talk_targets == -100)).all() and (talk_targets == unknown).any()
    assert (talk_targets[:, :20] == -100).all()            # the warm-up
    # Each row ends 0-29 frames after frame 250, inside the pause: its clip-end label is not trained.
    assert (labels[4:, 0] == talk_targets[:, loss_frames[0]]).all()
    assert (labels[4:, 0] == -100).all()
