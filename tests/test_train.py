"""A tiny model trained on a handful of real clips laid out as a Speech Commands folder."""
import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from audio.augment import AugmentConfig
from audio.config import FrontendConfig
from model.checkpoint import load_checkpoint
from model.data import list_splits, load_eval_split
from model.labels import LABELS
from model.network import NetworkConfig
from model.train import TrainConfig, train
from conftest import DATA_DIR, make_dataset, run_cli

DATA_DIR_PAIRS = DATA_DIR / "logmel_pairs"

# A tiny network that can learn 10 clips in seconds: no augmentation, no regularisation.
QUIET = AugmentConfig(shift_ms=0, stretch_min=1.0, stretch_max=1.0, warp_min=1.0, warp_max=1.0, gain_db=0,
                      noise_prob=0.0, reverb_prob=0.0, time_masks=0, freq_masks=0)
TINY = TrainConfig(epochs=40, batch_size=4, learning_rate=1e-2, warmup_epochs=1, ema_decay=0.5,
                   eval_every_epochs=10, chain_prob=0.0, seed=1, weight_decay=0.0, label_smoothing=0.0)
TINY_NET = NetworkConfig(hidden_size=32, n_layers=1, conv_channels=0, dropout=0.0)


def test_split_listing_follows_the_lists(tmp_path):
    splits = list_splits(make_dataset(tmp_path / "sc"))
    assert len(splits["train"]) == 10 and len(splits["validation"]) == 5 and len(splits["test"]) == 5
    assert ("house/aaaa0000_nohash_0.wav", "_unknown_") in splits["train"]
    assert all(path.split("/")[1].startswith("cccc") for path, _ in splits["validation"])


def test_eval_split_adds_silence_from_held_out_noise(tmp_path):
    clips = load_eval_split(make_dataset(tmp_path / "sc"), "validation", FrontendConfig.legacy_v4())
    silence = clips.labels == LABELS.index("_silence_")
    assert silence.sum() == 1 and len(clips) == 6
    assert np.abs(clips.waves[silence]).max() > 0


def test_tiny_model_learns_training_clips(tmp_path):
    data = make_dataset(tmp_path / "sc")
    result = train(data, tmp_path / "model", TINY_NET, TINY, aug=QUIET, show_progress=False)
    assert result.report["splits"]["train"]["accuracy"] >= 0.9
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] * 0.5
    for name in ("model.safetensors", "config.json", "report.json", "confusion.png", "training_curves.png"):
        assert (tmp_path / "model" / name).stat().st_size > 0
    report = json.loads((tmp_path / "model" / "report.json").read_text())
    assert set(report["splits"]) == {"train", "validation", "test"}
    assert len(report["splits"]["test"]["confusion"]) == len(LABELS)
    loaded = load_checkpoint(tmp_path / "model")
    assert loaded.extra["data"]["train_clips"] == 10 and "metrics" in loaded.extra

    # The trained folder works with the CLI: evaluate prints accuracy, classify labels a clip.
    out = run_cli("evaluate", "--data", str(data), "--split", "test", "--json", "--model", str(tmp_path / "model"))
    assert out.returncode == 0, out.stderr
    evaluated = json.loads(out.stdout)
    assert evaluated["clips"] == 6
    # evaluate's figure is the training report's test figure (same clips, same silence, same model).
    assert evaluated["accuracy"] == result.report["splits"]["test"]["accuracy"]
    assert evaluated["confusion"] == result.report["splits"]["test"]["confusion"]


def test_train_rejects_a_folder_without_the_layout(tmp_path):
    out = run_cli("train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--quiet")
    assert out.returncode == 1
    assert "validation_list.txt" in out.stderr and "Traceback" not in out.stderr


def test_extra_words_join_training_labelled_by_their_folder(tmp_path, capsys):
    data = make_dataset(tmp_path / "sc")
    extra = tmp_path / "extra"
    for word, source in (("yes", "yes"), ("zebra", "house")):   # a word outside the commands is `_unknown_`
        (extra / word).mkdir(parents=True)
        samples, rate = sf.read(data / source / "aaaa0000_nohash_0.wav", dtype="float32")
        sf.write(extra / word / "mine_0.wav", samples * 0.7, rate)
    (extra / word / "notes.txt").write_text("not audio")                   # not an audio file: not listed
    (extra / "yes" / "broken.wav").write_bytes(b"RIFF\x00\x00garbage")     # listed, unreadable: skipped
    result = train(data, tmp_path / "model", TINY_NET, replace(TINY, epochs=2), aug=QUIET, show_progress=False,
                   extra_words=[str(extra)])
    assert load_checkpoint(tmp_path / "model").extra["data"]["extra_word_clips"] == 2
    labels = result.report["splits"]["train"]["confusion"]
    assert sum(labels[LABELS.index("yes")]) == 2 + 1 and sum(labels[LABELS.index("_unknown_")]) == 2 + 1
    assert "1 of 3 files" in capsys.readouterr().err

    out = run_cli("train", "--data", str(data), "--out", str(tmp_path / "m"), "--quiet",
                  "--extra-words", str(tmp_path / "missing"))
    assert out.returncode == 1
    assert "missing" in out.stderr and "Traceback" not in out.stderr
    (tmp_path / "empty").mkdir()
    out = run_cli("train", "--data", str(data), "--out", str(tmp_path / "m"), "--quiet", "--extra-words",
                  str(tmp_path / "empty"))
    assert out.returncode == 1 and "no word folders" in out.stderr and "Traceback" not in out.stderr
    # --extra-unknown with a missing path fails before any reading, as --extra-words does.
    out = run_cli("train", "--data", str(data), "--out", str(tmp_path / "m"), "--quiet", "--extra-unknown",
                  str(tmp_path / "no_such_speech"))
    assert out.returncode == 1 and "no_such_speech" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "m").exists()


def test_torchrun_with_two_cpu_ranks_writes_one_normal_checkpoint(tmp_path):
    """`speechcmd train` under torchrun (2 processes, gloo): rank 0 alone writes, config.json records
    world_size 2, and the model loads and classifies like any other."""
    import os
    import subprocess
    import sys
    from conftest import REPO_ROOT
    data = make_dataset(tmp_path / "sc")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "desktop_app.cli", "train", "--data", str(data), "--out", str(tmp_path / "model"),
                          "--epochs", "2", "--batch-size", "4", "--hidden-size", "16", "--layers", "1",
                          "--conv-channels", "0", "--quiet"],
                         capture_output=True, text=True, timeout=240, cwd=REPO_ROOT, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("model written to") == 1          # only rank 0 reports
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["training"]["world_size"] == 2
    assert "unfinished" not in config["training"]
    loaded = load_checkpoint(tmp_path / "model")
    assert loaded.network.cfg.hidden_size == 16
    result = run_cli("classify", "--json", "--model", str(tmp_path / "model"), str(data / "yes"))
    assert result.returncode == 0 and result.stdout.count('"label"') == 4


def test_image_folders_train_with_wav_folders_and_bad_images_are_skipped(tmp_path, capsys):
    """A log-mel image folder (yes/*.jpg) joins a wav folder: its clips are read through the pixel
    mapping, its validation clips form `validation_images`, and an unreadable image is counted."""
    from PIL import Image
    wav_data = make_dataset(tmp_path / "sc")
    images = tmp_path / "img"
    pairs = sorted((DATA_DIR / "logmel_pairs").glob("*.jpg"))
    val = []
    for i, pair in enumerate(pairs):
        word = pair.name.split("_")[0]
        (images / word).mkdir(parents=True, exist_ok=True)
        name = f"{i:08x}_nohash_0.jpg"
        Image.open(pair).save(images / word / name)
        if i % 4 == 0:
            val.append(f"{word}/{name}")
    (images / "down" / "broken_nohash_0.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (images / "validation_list.txt").write_text("\n".join(val) + "\n")
    (images / "testing_list.txt").write_text("")
    (images / "_silence_").mkdir()
    Image.fromarray(np.full((98, 40), 20, np.uint8)).save(images / "_silence_" / "noise_0.jpg")
    result = train([wav_data, images], tmp_path / "model", TINY_NET, replace(TINY, epochs=2), aug=QUIET,
                   show_progress=False)
    splits = result.report["splits"]
    assert splits["validation_images"]["clips"] == len(val) and splits["validation"]["clips"] == 6
    assert "test_images" not in splits                          # its testing list is empty
    config = load_checkpoint(tmp_path / "model").extra
    folders = config["data"]["folders"]
    assert folders[str(images)]["kind"] == "image" and folders[str(images)]["train_clips"] == len(pairs) - len(val)
    # The wav folder has background noise, so the image crops (cut from the same recordings, maybe
    # from its held-out part) stay out unless asked for.
    assert folders[str(images)]["train_silence_clips"] == 0
    assert "1 of" in capsys.readouterr().err                      # the broken image, counted
    from model.train import _read_data
    from model import feature_data
    opened = [feature_data.open_folder(d) for d in (wav_data, images)]
    *_, summary = _read_data(opened, FrontendConfig.speech_commands_images(), replace(TINY, image_silence="always"),
                             np.random.default_rng(0), False)
    assert summary[str(images)]["train_silence_clips"] == 1


def test_image_folders_need_the_images_frontend(tmp_path):
    from model.data import DatasetError
    import pytest
    images = tmp_path / "img"
    (images / "yes").mkdir(parents=True)
    (images / "yes" / "a_nohash_0.jpg").write_bytes((DATA_DIR_PAIRS / "up_18f8afd5_nohash_3.jpg").read_bytes())
    (images / "validation_list.txt").write_text("")
    (images / "testing_list.txt").write_text("")
    with pytest.raises(DatasetError, match="frontend"):
        train(images, tmp_path / "model", TINY_NET, TINY, frontend=FrontendConfig.legacy_v4(), aug=QUIET, show_progress=False)


def test_metrics_on_predictions_with_known_answers():
    from model.evaluate import format_metrics, metrics
    names = ("a", "b", "c")
    truth = np.array([0, 0, 0, 0, 1, 1, 2])
    guess = np.array([0, 0, 0, 1, 1, 2, 2])     # a: 3/4, b: 1/2, c: 1/1 -> 5/7
    result = metrics(truth, guess, names)
    assert result["accuracy"] == pytest.approx(5 / 7) and result["clips"] == 7
    assert result["per_class"]["a"] == {"accuracy": 0.75, "clips": 4}
    assert result["per_class"]["b"] == {"accuracy": 0.5, "clips": 2}
    # Rows are the truth, columns the prediction: one "a" taken for "b", one "b" for "c".
    assert result["confusion"] == [[3, 1, 0], [0, 1, 1], [0, 0, 1]]
    empty = metrics(np.array([0]), np.array([0]), names)
    assert empty["per_class"]["c"] == {"accuracy": None, "clips": 0}
    text = format_metrics("demo", result, names).splitlines()
    assert text[0] == "demo: accuracy 0.7143 on 7 clips"
    assert text[1].split() == ["a", "0.750", "(4", "clips)"]
    assert text[-2].split() == ["b", "0", "1", "1"] and text[-1].split() == ["c", "0", "0", "1"]


def test_a_folder_of_images_alone_trains_and_plots(tmp_path):
    """No wav folder: the only validation set is `validation_images` (the report and plots use it)."""
    from PIL import Image
    images = tmp_path / "img"
    pairs = sorted(DATA_DIR_PAIRS.glob("*.jpg"))
    for i, pair in enumerate(pairs):
        word = pair.name.split("_")[0]
        (images / word).mkdir(parents=True, exist_ok=True)
        Image.open(pair).save(images / word / f"{i:08x}_nohash_0.jpg")
    (images / "validation_list.txt").write_text(f"{pairs[0].name.split('_')[0]}/00000000_nohash_0.jpg\n")
    (images / "testing_list.txt").write_text("")
    (images / "_silence_").mkdir()
    Image.fromarray(np.full((98, 40), 20, np.uint8)).save(images / "_silence_" / "noise_0.jpg")
    result = train(images, tmp_path / "model", TINY_NET, replace(TINY, epochs=2), aug=QUIET, show_progress=False)
    assert set(result.report["splits"]) == {"train", "validation_images"}
    assert (tmp_path / "model" / "confusion.png").stat().st_size > 0


def test_a_training_word_head_folds_into_the_twelve_labels(tmp_path):
    """`word_classes`: the other words get outputs of their own while training; the saved model has the
    12 labels, `_unknown_` holding exactly the probability the words and other speech had together."""
    import torch
    from model.network import RecurrentClassifier
    from model.train import _with_word_labels, _without_word_head
    torch.manual_seed(0)
    with_words = RecurrentClassifier(replace(TINY_NET, n_labels=len(LABELS) + 2, unknown_words=2,
                                             unknown_index=LABELS.index("_unknown_"))).eval()
    folded = _without_word_head(with_words, TINY_NET).eval()
    frames = torch.randn(3, 20, TINY_NET.n_mels)
    wide = torch.softmax(with_words(frames)[0], -1)
    narrow = torch.softmax(folded(frames)[0], -1)
    unknown = LABELS.index("_unknown_")
    torch.testing.assert_close(narrow[..., unknown], wide[..., unknown] + wide[..., len(LABELS):].sum(-1))
    others = [i for i in range(len(LABELS)) if i != unknown]
    torch.testing.assert_close(narrow[..., others], wide[..., others])

    data = make_dataset(tmp_path / "sc")
    cfg = replace(TINY, epochs=4, word_classes=("house",))
    result = train(data, tmp_path / "model", TINY_NET, cfg, aug=QUIET, show_progress=False)
    loaded = load_checkpoint(tmp_path / "model")
    assert tuple(loaded.labels) == LABELS and loaded.network.word_head is None
    assert result.report["labels"] == list(LABELS)
    # Only `_unknown_` clips of the named folder get the word's label.
    from model.feature_data import FeatureSet
    clips = FeatureSet(np.zeros((3, 2, 2), np.float16), np.array([LABELS.index("_unknown_"), 0, LABELS.index("_unknown_")]),
                       np.zeros(3, bool), ["x/house/a.wav", "x/house/b.wav", "x/bird/c.wav"])
    assert list(_with_word_labels(clips, ("bird", "house")).labels) == [len(LABELS) + 1, 0, len(LABELS) + 0]
    from model.data import DatasetError
    with pytest.raises(DatasetError, match="no training clip of 'hosue'"):
        _with_word_labels(clips, ("house", "hosue"))
