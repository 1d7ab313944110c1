"""`speechcmd enroll`: a user's takes -> a personal model with new words, on real recordings."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import DATA_DIR, run_cli

TAKES_DIR = DATA_DIR / "enroll_jackson"
WORDS = ("zero", "one", "two")


def _takes(root, takes=range(4), words=WORDS):
    for word in words:
        (root / word).mkdir(parents=True, exist_ok=True)
        for t in takes:
            shutil.copy(TAKES_DIR / f"{word}_{t}.wav", root / word / f"{t}.wav")
    return root


def _yes_takes(root):
    """Two takes of the built-in `yes` (one committed clip, at two levels) in `root/yes/`."""
    from audio.io import read_audio
    yes = read_audio(DATA_DIR / "clips" / "yes.wav", 16000)
    (root / "yes").mkdir(parents=True)
    for i, gain in enumerate((1.0, 0.7)):
        sf.write(root / "yes" / f"{i}.wav", gain * yes, 16000)
    return root


@pytest.fixture(scope="module")
def personal(tmp_path_factory):
    """One enrollment shared by the tests below: three new words, plus bad takes to be skipped."""
    root = tmp_path_factory.mktemp("enroll")
    takes = _takes(root / "takes")
    rate = 8000
    sf.write(takes / "zero" / "silent.wav", np.zeros(rate, np.float32), rate)
    loud = np.clip(3.0 * sf.read(TAKES_DIR / "zero_0.wav", dtype="float32")[0], -1, 1)
    sf.write(takes / "zero" / "clipped.wav", loud, rate)
    one = sf.read(TAKES_DIR / "one_0.wav", dtype="float32")[0]
    sf.write(takes / "one" / "long.wav", np.concatenate([one, one, one, one]), rate)   # four words in a row
    (takes / "two" / "broken.wav").write_bytes(b"RIFF\x00\x00 not a wav")
    out = run_cli("enroll", "--takes", str(takes), "--out", str(root / "model"), "--steps", "150", "--json",
                  timeout_s=300)
    return root, out


def test_enroll_writes_a_model_with_the_new_words_and_reports_bad_takes(personal):
    root, out = personal
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["new_words"] == sorted(WORDS)
    assert result["labels"][:12][-2:] == ["_unknown_", "_silence_"] and result["labels"][12:] == sorted(WORDS)
    assert result["takes_used"] == {"one": 4, "two": 4, "zero": 4}
    assert result["warnings"] == []                              # each word is recognized on its takes
    problems = {entry["path"].rsplit("/", 1)[1]: entry["problem"] for entry in result["takes_skipped"]}
    assert problems.keys() == {"silent.wav", "clipped.wav", "long.wav", "broken.wav"}
    assert problems["silent.wav"].startswith("silent") and problems["clipped.wav"].startswith("clipped")
    assert problems["long.wav"].startswith("too long") and problems["broken.wav"].startswith("unreadable")
    for name in problems:
        assert "skipped: " in out.stderr and name in out.stderr
    config = json.loads((root / "model" / "config.json").read_text())
    enrollment = config["enrollment"]
    assert enrollment["new_words"] == sorted(WORDS) and len(enrollment["takes_used"]) == 12
    assert "personal units" in enrollment["adapted"] and config["network"]["n_labels"] == 15
    assert config["network"]["extra_top_units"] == 32


def test_new_words_leave_the_base_models_outputs_as_they_were(personal):
    """The base units and the base labels' output rows are frozen and new words only split what the
    base model gives `_unknown_`: on any audio every other label keeps the base model's probability."""
    root, _ = personal
    from audio.io import read_audio
    from audio.mel import NumpyStreamingLogMel
    from model.checkpoint import default_model_dir, load_checkpoint
    from model.numpy_network import load_numpy_model
    from model.streaming import _softmax
    base, mine = load_numpy_model(default_model_dir()), load_numpy_model(root / "model")
    rate = base.frontend.sample_rate_hz
    audio = np.concatenate([read_audio(p, rate) for p in sorted((DATA_DIR / "clips").glob("*.wav"))[:6]]
                           + [read_audio(TAKES_DIR / f"{word}_5.wav", rate) for word in WORDS])
    frames = NumpyStreamingLogMel(base.frontend).process(audio)
    base_logits, _, _ = base.network.forward(frames, base.network.initial_state())
    my_logits, _, hidden = mine.network.forward(frames, mine.network.initial_state())
    p_base, p_mine = _softmax(base_logits), _softmax(my_logits)
    unknown = base.labels.index("_unknown_")
    others = [i for i in range(12) if i != unknown]
    np.testing.assert_allclose(p_mine[:, others], p_base[:, others], atol=1e-5)
    np.testing.assert_allclose(p_mine[:, [unknown, 12, 13, 14]].sum(1), p_base[:, unknown], atol=1e-5)
    assert p_mine[:, 12:].max() > 0.5                                   # and the new words do win somewhere
    assert hidden.shape[1] == 128 + 32 and np.abs(hidden[:, 128:]).max() > 0.1   # the personal units work
    # The torch network (evaluate, a further enrollment) computes the same.
    import torch
    net = load_checkpoint(root / "model").network
    with torch.no_grad():
        torch_logits, _ = net(torch.from_numpy(frames)[None])
    np.testing.assert_allclose(torch_logits[0].numpy(), my_logits, atol=1e-4)


def test_the_personal_model_classifies_and_detects_the_held_out_takes(personal, tmp_path):
    root, _ = personal
    model = root / "model"
    held_out = [TAKES_DIR / f"{word}_{t}.wav" for word in WORDS for t in (4, 5)]
    out = run_cli("classify", "--json", "--model", str(model), *map(str, held_out))
    assert out.returncode == 0, out.stderr
    labels = [json.loads(line)["label"] for line in out.stdout.splitlines()]
    assert sum(label == path.name.split("_")[0] for label, path in zip(labels, held_out)) >= 5, labels
    # A recording: silence, "two", silence, "zero" (held-out takes): detect finds the new words.
    rate = 16000
    from audio.io import read_audio
    gap = np.zeros(rate, np.float32)
    two, zero = read_audio(TAKES_DIR / "two_5.wav", rate), read_audio(TAKES_DIR / "zero_5.wav", rate)
    sf.write(tmp_path / "rec.wav", np.concatenate([gap, two, gap, gap, zero, gap]), rate)
    out = run_cli("detect", "--json", "--model", str(model), str(tmp_path / "rec.wav"))
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert [e["label"] for e in events] == ["two", "zero"], events
    assert 1.0 <= events[0]["time"] <= 1.0 + two.size / rate + 0.8


def test_a_word_with_too_few_good_takes_fails_and_writes_nothing(tmp_path):
    takes = _takes(tmp_path / "takes", takes=range(3), words=("zero", "one"))
    _takes(takes, takes=range(1), words=("two",))
    out = run_cli("enroll", "--takes", str(takes), "--out", str(tmp_path / "model"), timeout_s=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "'two' has 1 good take(s), 2 needed" in out.stderr
    assert not (tmp_path / "model").exists() and not (tmp_path / "model.partial").exists()


def test_enroll_refuses_a_takes_folder_without_words_and_an_existing_output(tmp_path):
    (tmp_path / "empty").mkdir()
    out = run_cli("enroll", "--takes", str(tmp_path / "empty"), "--out", str(tmp_path / "m"))
    assert out.returncode == 1 and "no word folders" in out.stderr
    takes = _takes(tmp_path / "takes", takes=range(2), words=("zero",))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    out = run_cli("enroll", "--takes", str(takes), "--out", str(tmp_path / "taken"))
    assert out.returncode == 1 and "already exists" in out.stderr
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"


def test_a_reserved_folder_name_is_refused(tmp_path):
    takes = _takes(tmp_path / "takes", takes=range(2), words=("zero",))
    (takes / "_silence_").mkdir()
    shutil.copy(TAKES_DIR / "one_0.wav", takes / "_silence_" / "a.wav")
    out = run_cli("enroll", "--takes", str(takes), "--out", str(tmp_path / "m"))
    assert out.returncode == 1 and "cannot be named '_silence_'" in out.stderr and "Traceback" not in out.stderr


def test_a_personal_model_can_be_enrolled_again_and_keeps_its_words_in_the_bank(personal, tmp_path):
    """The personal model's replay bank holds its own takes: a second enrollment replays them."""
    root, _ = personal
    from model.replay_bank import load_replay_bank
    from model.model_config import read_model_spec
    labels = read_model_spec(root / "model").labels
    bank = load_replay_bank(root / "model", labels)
    for word in WORDS:
        assert (bank.labels == labels.index(word)).sum() == 4
    with np.load(root / "model" / "replay_bank.npz") as saved:   # named, so a later new word can leave them out
        assert all((saved["words"] == word).sum() == 4 for word in WORDS)
    takes = _takes(tmp_path / "takes", takes=range(3), words=("zero",))
    out = run_cli("enroll", "--takes", str(takes), "--out", str(tmp_path / "again"), "--model", str(root / "model"),
                  "--steps", "60", "--json", timeout_s=200)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["new_words"] == [] and result["labels"] == list(labels)
    # Its personal units are reused, not added to: a model does not grow with each enrollment.
    assert json.loads((tmp_path / "again" / "config.json").read_text())["network"]["extra_top_units"] == 32


def test_a_new_word_that_sounds_like_a_command_is_named_in_a_warning(tmp_path):
    """A new word can only take what the base model calls other speech: takes that are really "yes"
    stay `yes`, and enrollment says so instead of writing a model that silently never fires."""
    from audio.io import read_audio
    yes = read_audio(DATA_DIR / "clips" / "yes.wav", 16000)
    (tmp_path / "takes" / "yeah").mkdir(parents=True)
    for i, gain in enumerate((1.0, 0.7, 0.5)):
        sf.write(tmp_path / "takes" / "yeah" / f"{i}.wav", gain * yes, 16000)
    out = run_cli("enroll", "--takes", str(tmp_path / "takes"), "--out", str(tmp_path / "m"), "--steps", "40",
                  "--json", timeout_s=200)
    assert out.returncode == 0, out.stderr
    warnings = json.loads(out.stdout)["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith("'yeah': 0 of 3") and "'yes' (3)" in warnings[0], warnings
    assert "warning: 'yeah'" in out.stderr


def test_re_recorded_commands_adapt_the_whole_top_layer(tmp_path):
    """A built-in command re-recorded needs the top layer's own features to move (personal units barely
    changed the test speakers' commands): then the top layer is fine-tuned, and no units are added."""
    _yes_takes(tmp_path / "takes")
    out = run_cli("enroll", "--takes", str(tmp_path / "takes"), "--out", str(tmp_path / "m"), "--steps", "20",
                  timeout_s=200)
    assert out.returncode == 0, out.stderr
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["network"]["extra_top_units"] == 0 and config["network"]["n_labels"] == 12
    assert config["enrollment"]["adapted"].startswith("the top GRU layer and the output layer")
    # auto: a share was chosen on the takes (the shipped model already hears this `yes`: some way back)
    share = config["enrollment"]["kept_base_share"]
    assert share in (0.0,) + tuple(config["enrollment"]["settings"]["base_share_candidates"])


def test_new_words_enrolled_with_a_re_recorded_command_are_recognized(tmp_path):
    """The mixed case: a built-in command re-recorded and new words in one enrollment. The whole top
    layer adapts (no personal units) and is blended back only as far as all the takes, the new words'
    too, allow; the new words still win on their held-out takes."""
    takes = _yes_takes(_takes(tmp_path / "takes"))
    out = run_cli("enroll", "--takes", str(takes), "--out", str(tmp_path / "m"), "--steps", "150", timeout_s=300)
    assert out.returncode == 0, out.stderr
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["network"]["extra_top_units"] == 0 and config["network"]["n_labels"] == 15
    assert config["enrollment"]["adapted"].startswith("the top GRU layer and the output layer")
    share = config["enrollment"]["kept_base_share"]
    assert share in (0.0,) + tuple(config["enrollment"]["settings"]["base_share_candidates"])
    held_out = [TAKES_DIR / f"{word}_{t}.wav" for word in WORDS for t in (4, 5)] + [DATA_DIR / "clips" / "yes.wav"]
    out = run_cli("classify", "--json", "--model", str(tmp_path / "m"), *map(str, held_out))
    assert out.returncode == 0, out.stderr
    labels = [json.loads(line)["label"] for line in out.stdout.splitlines()]
    assert labels[-1] == "yes", labels
    assert sum(label == path.name.split("_")[0] for label, path in zip(labels[:-1], held_out)) >= 5, labels


def test_keep_base_moves_a_re_recorded_top_layer_back_to_the_base(tmp_path):
    """--keep-base 1 blends the adapted top layer all the way back: the base model's outputs on every
    clip, exactly; without it the same enrollment changes them. Out of range: one line, nothing written."""
    takes = _yes_takes(tmp_path / "takes")
    clips = [str(DATA_DIR / "clips" / f"{word}.wav") for word in ("yes", "no", "left", "house")]
    scores = {}
    for share in ("0", "1"):
        out = run_cli("enroll", "--takes", str(takes), "--out", str(tmp_path / share), "--steps", "30",
                      "--keep-base", share, timeout_s=200)
        assert out.returncode == 0, out.stderr
        out = run_cli("classify", "--json", "--model", str(tmp_path / share), *clips)
        scores[share] = [(r["label"], r["score"]) for r in map(json.loads, out.stdout.splitlines())]
    config = json.loads((tmp_path / "1" / "config.json").read_text())["enrollment"]
    assert config["settings"]["keep_base_share"] == 1.0 and "moved 1 of the way back" in config["adapted"]
    out = run_cli("classify", "--json", *clips)
    base = [(r["label"], r["score"]) for r in map(json.loads, out.stdout.splitlines())]
    assert scores["1"] == base
    assert scores["0"] != base
    out = run_cli("enroll", "--takes", str(takes), "--out", str(tmp_path / "bad"), "--keep-base", "1.5")
    assert out.returncode != 0 and len(out.stderr.strip().splitlines()) == 1 and "--keep-base" in out.stderr
    assert not (tmp_path / "bad").exists()
    out = run_cli("enroll", "--takes", str(takes), "--out", str(tmp_path / "bad"), "--keep-base", "most")
    assert out.returncode != 0 and "auto or a number" in out.stderr and not (tmp_path / "bad").exists()


def test_the_base_share_is_the_largest_the_takes_allow():
    """choose_base_share: with an "adaptation" that changed nothing, all the way to the largest
    candidate; with one the takes need (every take now read as `stop`), only as far back as keeps
    them `stop`, and the weights are then exactly that blend; a new word's head is never blended, and
    the new words' takes cannot hide what a command's take loses."""
    import copy
    from dataclasses import replace

    import torch

    from audio.features import LogMel
    from audio.io import read_audio
    from model.checkpoint import default_model_dir, load_checkpoint
    from model.data import fit_length
    from model.enroll import EnrollConfig, _Split, choose_base_share

    base = load_checkpoint(default_model_dir())
    words = ("yes", "no", "left", "house")
    clips = np.stack([fit_length(read_audio(DATA_DIR / "clips" / f"{w}.wav", 16000), 16000) for w in words])
    feats = LogMel(base.frontend)(torch.from_numpy(clips.astype(np.float32)))
    cfg = EnrollConfig()
    split = _Split(copy.deepcopy(base.network).eval(), 12, base.labels.index("_unknown_"))
    inputs = split.features(feats)
    truth = torch.tensor([base.labels.index(w if w in base.labels else "_unknown_") for w in words])
    assert choose_base_share(split, inputs, truth, cfg) == max(cfg.base_share_candidates)

    split = _Split(copy.deepcopy(base.network).eval(), 12, base.labels.index("_unknown_"))
    stop = base.labels.index("stop")
    with torch.no_grad():
        split.head.bias[stop] += 12.0
    share = choose_base_share(split, inputs, torch.full((len(words),), stop), cfg)
    assert 0.0 < share < max(cfg.base_share_candidates)
    assert torch.allclose(split.head.bias[stop], base.network.head.bias[stop] + 12.0 * (1 - share))
    assert (split(inputs)[0][:, -1].argmax(1) == stop).all()

    # With a new word (a word head), the blend moves the top layer and head only: the word head stays as trained
    split = _Split(copy.deepcopy(base.network).eval(), 13, base.labels.index("_unknown_"))
    with torch.no_grad():
        split.word_head.weight.normal_()
        split.head.bias[stop] += 12.0
    word_head = split.word_head.weight.clone()
    assert choose_base_share(split, inputs, truth, replace(cfg, keep_base_share=0.5)) == 0.5
    assert torch.equal(split.word_head.weight, word_head)
    assert torch.allclose(split.head.bias[stop], base.network.head.bias[stop] + 6.0)

    # The commands' takes and the new words' are checked apart: here the adaptation made one take
    # `stop` and left three new-word takes wrong; blending back far would right the new words (pooled,
    # three takes gained against one lost), but the `stop` take it loses holds the share back
    split = _Split(copy.deepcopy(base.network).eval(), 13, base.labels.index("_unknown_"))
    with torch.no_grad():
        split.head.bias[stop] += 12.0
        split.word_head.bias[1] += 20.0
    share = choose_base_share(split, inputs, torch.tensor([stop, 12, 12, 12]), cfg)
    assert share < max(cfg.base_share_candidates)
    assert split(inputs)[0][0, -1].argmax() == stop


def test_a_take_from_a_noisy_microphone_is_trimmed_to_its_word():
    """A take whose noise floor is within 30 dB of the word (a committed `yes` in 2 s of running-tap
    noise, 20 dB below it) is not "too long": the sound is found above the noise floor and centred;
    four words in a row over the same noise still are too long."""
    import tempfile

    from audio.io import read_audio
    from model.takes import EnrollConfig, check_take

    rate = 16000
    yes = read_audio(DATA_DIR / "clips" / "yes.wav", rate)
    noise = read_audio(DATA_DIR / "noise_running_tap.wav", rate)[:2 * rate]
    word_rms = np.sqrt(np.mean(yes[np.abs(yes) > 0.1 * np.abs(yes).max()] ** 2))
    noise = noise / np.sqrt(np.mean(noise ** 2)) * word_rms * 10 ** (-20 / 20)
    cfg = EnrollConfig()
    for name, words, start in (("one", [yes], 8000), ("four", [yes] * 4, 0)):
        take = noise.copy() if name == "one" else np.tile(noise, 2)
        for k, w in enumerate(words):
            at = start + k * rate
            take[at:at + w.size] += w
        with tempfile.TemporaryDirectory() as tmp:
            path = f"{tmp}/{name}.wav"
            sf.write(path, np.clip(take, -1, 1), rate)
            checked = check_take("yes", path, cfg, rate, rate)
        if name == "one":
            assert checked.problem is None and 0.2 < checked.sound_s < 1.0, (checked.problem, checked.sound_s)
            # centred: the clip holds the word, whose loudest 10 ms sits near the middle
            frames = checked.samples[: rate // 160 * 160].reshape(-1, 160)
            assert 30 <= int(np.argmax((frames ** 2).mean(1))) <= 70
        else:
            assert checked.problem is not None and checked.problem.startswith("too long")


def test_personal_units_stepped_alone_compute_what_the_whole_layer_computes():
    """Adaptation steps only the personal units, the frozen base units' outputs computed once
    (`_Split.personal_top`): the logits and the personal units' gradients must be nn.GRU's over the
    whole layer, also once the personal units read each other. A base unit that reads a personal unit
    would make that shortcut wrong: it is refused."""
    import copy

    import torch

    from audio.features import LogMel
    from audio.io import read_audio
    from model.checkpoint import default_model_dir, load_checkpoint
    from model.data import fit_length
    from model.enroll import _Split

    base = load_checkpoint(default_model_dir())
    clips = np.stack([fit_length(read_audio(DATA_DIR / "clips" / f"{w}.wav", 16000), 16000)
                      for w in ("yes", "no", "left", "house")])
    feats = LogMel(base.frontend)(torch.from_numpy(clips.astype(np.float32)))
    n_base, n_extra = base.network.cfg.hidden_size, 32
    n_top = n_base + n_extra
    split = _Split(copy.deepcopy(base.network).eval(), 14, base.labels.index("_unknown_"), n_extra,
                   frozen_rows=tuple(range(12)))
    inputs = split.features(feats)
    split.start_new_units_from(inputs)
    torch.manual_seed(0)
    with torch.no_grad():
        split.word_head.weight.normal_(0, 0.3)
        for gate in range(3):   # the personal units read each other, as they may after training
            rows = slice(gate * n_top + n_base, (gate + 1) * n_top)
            split.top.weight_hh_l0[rows, n_base:] = 0.1 * torch.randn(n_extra, n_extra)
    base_hidden = split.base_hidden(inputs)
    personal_rows = torch.cat([torch.arange(g * n_top + n_base, (g + 1) * n_top) for g in range(3)])
    results = []
    for given in (None, base_hidden):
        logits, hidden = split(inputs, given)
        loss = logits[:, -1].logsumexp(1).sum() + logits.pow(2).mean()
        grads = torch.autograd.grad(loss, [split.top.weight_ih_l0, split.top.weight_hh_l0, split.word_head.weight])
        results.append((logits, hidden, grads[0][personal_rows], grads[1][personal_rows], grads[2]))
    whole, alone = results
    assert torch.allclose(whole[0], alone[0], atol=1e-4) and torch.allclose(whole[1], alone[1], atol=1e-5)
    for grad_whole, grad_alone in zip(whole[2:], alone[2:]):
        assert grad_whole.abs().max() > 1e-3
        assert torch.allclose(grad_whole, grad_alone, rtol=1e-3, atol=1e-5)

    assert split.base_units_blind()
    with torch.no_grad():
        split.top.weight_hh_l0[0, n_base] = 0.1   # a base unit reading a personal one
    assert not split.base_units_blind()
    with pytest.raises(ValueError, match="read the personal units"):
        split.base_hidden(inputs)


def test_new_words_on_a_personal_model_whose_commands_were_re_recorded(personal, tmp_path):
    """Personal model (new words) -> `yes` re-recorded (the whole top layer adapts, so its base units may
    now read the personal units) -> another new word: the third enrollment must still work (it steps the
    whole layer when the personal units cannot be stepped alone) and keep every word."""
    root, _ = personal
    yes_takes = _yes_takes(tmp_path / "yes_takes")
    out = run_cli("enroll", "--takes", str(yes_takes), "--out", str(tmp_path / "with_yes"), "--model",
                  str(root / "model"), "--steps", "20", timeout_s=200)
    assert out.returncode == 0, out.stderr
    new_word = tmp_path / "deux_takes" / "deux"
    new_word.mkdir(parents=True)
    for t in range(3):
        shutil.copy(TAKES_DIR / f"two_{t}.wav", new_word / f"{t}.wav")
    out = run_cli("enroll", "--takes", str(new_word.parent), "--out", str(tmp_path / "with_deux"), "--model",
                  str(tmp_path / "with_yes"), "--steps", "20", "--json", timeout_s=200)
    assert out.returncode == 0, out.stderr
    labels = json.loads((tmp_path / "with_deux" / "config.json").read_text())["labels"]
    assert labels[-4:] == ["one", "two", "zero", "deux"]


def test_a_take_far_shorter_than_the_others_is_refused_as_too_short(tmp_path):
    """Three good takes of a word and a fourth cut to a sliver of its sound: the sliver is named."""
    from audio.io import read_audio
    from model.takes import EnrollConfig, read_takes
    takes = _takes(tmp_path / "takes", takes=range(3), words=("zero",))
    whole = read_audio(takes / "zero" / "0.wav", 8000)
    loud = np.flatnonzero(np.abs(whole) > 0.3 * np.abs(whole).max())
    sliver = whole.copy()
    sliver[loud[0] + 400:] = 0.0          # 50 ms of the word, then nothing
    sliver[:loud[0]] = 0.0
    sf.write(takes / "zero" / "3.wav", sliver, 8000)
    checked = {Path(t.path).name: t for t in read_takes(takes, EnrollConfig(), 16000, 16000)}
    assert [checked[f"{i}.wav"].problem for i in range(3)] == [None, None, None]
    assert checked["3.wav"].problem.startswith("too short (")


def test_not_commands_clips_are_read_as_other_speech(tmp_path):
    """Sounds the user marked "Not a command" (a `_not_commands_/` folder) train as `_unknown_`; any other
    name starting with _ is still refused."""
    from model.takes import EnrollConfig, EnrollError, read_takes
    takes = _takes(tmp_path / "takes", takes=range(3), words=("zero",))
    (takes / "_not_commands_").mkdir()
    shutil.copy(DATA_DIR / "clips" / "stop.wav", takes / "_not_commands_" / "20261207-101010_stop.wav")
    read = read_takes(takes, EnrollConfig(), 16000, 16000)
    kept = [t for t in read if Path(t.path).parent.name == "_not_commands_"]
    assert len(kept) == 1 and kept[0].word == "_unknown_" and kept[0].problem is None
    (takes / "_mine_").mkdir()
    shutil.copy(DATA_DIR / "clips" / "stop.wav", takes / "_mine_" / "a.wav")
    with pytest.raises(EnrollError, match="reserved"):
        read_takes(takes, EnrollConfig(), 16000, 16000)


def test_takes_are_judged_against_their_own_noise_floor(tmp_path):
    """A clear word from a quiet microphone (40 dB down) is used as it is; a take of steady noise, however
    loud, is silent; a file of zeros too."""
    from audio.io import read_audio
    from model.takes import EnrollConfig, check_take
    word = read_audio(TAKES_DIR / "zero_0.wav", 16000)
    noise = read_audio(DATA_DIR / "noise_running_tap.wav", 16000)[:16000]
    cases = {"quiet.wav": 0.01 * word, "noise.wav": 0.5 * noise / np.abs(noise).max(), "zeros.wav": 0 * word}
    for name, samples in cases.items():
        sf.write(tmp_path / name, samples, 16000, subtype="FLOAT")
    checked = {name: check_take("zero", tmp_path / name, EnrollConfig(), 16000, 16000) for name in cases}
    assert checked["quiet.wav"].problem is None and checked["quiet.wav"].sound_s > 0.2
    assert checked["noise.wav"].problem.startswith("silent (nothing stands out of the noise")
    assert checked["zeros.wav"].problem.startswith("silent (loudest moment")


def test_the_takes_a_too_few_error_refers_to_are_listed_before_it(tmp_path):
    takes = _takes(tmp_path / "takes", takes=range(3), words=("zero",))
    _takes(takes, takes=range(1), words=("one",))
    sf.write(takes / "one" / "9.wav", np.zeros(8000, np.float32), 8000)
    out = run_cli("enroll", "--takes", str(takes), "--out", str(tmp_path / "model"), timeout_s=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines[-2] == f"skipped: {takes / 'one' / '9.wav'}: silent (loudest moment -120 dBFS)"
    assert lines[-1] == "speechcmd: word 'one' has 1 good take(s), 2 needed (1 skipped, listed above)"
