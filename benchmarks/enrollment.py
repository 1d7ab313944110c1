"""Enrollment, measured (docs/ENROLL.md). Not a test: minutes of CPU, and it reads ../shared/data.

    .venv/bin/python benchmarks/enrollment.py fsdd       [--model DIR] [--takes 5]
    .venv/bin/python benchmarks/enrollment.py precise    [--model DIR] [--takes 5]
    .venv/bin/python benchmarks/enrollment.py commands   [--model DIR] [--takes 3] [--split test]
    .venv/bin/python benchmarks/enrollment.py mixed      [--model DIR] [--takes 3] [--split validation]
    .venv/bin/python benchmarks/enrollment.py images     [--model DIR] [--takes 3] [--workers 2] [--blend 0 0.5]
    .venv/bin/python benchmarks/enrollment.py images --from-log LOG   # a run's rows pooled again
    .venv/bin/python benchmarks/enrollment.py words      [--model DIR] [--takes 5] [--draws 4] [--seeds 0 1]

fsdd: each FSDD speaker (8 kHz, 50 takes per digit) enrolls the ten digits as ten new words from
  takes 0..N-1; accuracy on that speaker's other takes (trimmed and centred in 1 s as enrollment does,
  decided at the last frame; any other label is wrong).
commands: each speaker of the wav split (`--split`: validation speakers to choose a method on, test
  speakers to report it) with 4 or more clips of a command re-records those commands: enrolled from
  their first N clips (sorted by name), scored on their remaining clips of those commands, by the
  personal model and by the base model (the same clips, as `evaluate` reads them).
precise: a new word that is not FSDD: "computer" of the Mycroft Precise community clips (57 clips of
  several unnamed speakers, noisy) enrolled from its first N files (sorted by name; takes the checks
  reject are skipped), scored on the rest.
mixed: the same speakers re-record their commands and, in the same enrollment, add the ten digits as
  new words from 5 takes of one FSDD speaker (`--fsdd-speaker`; no Speech Commands speaker says a
  non-command word 4 times, so the new words are another person's voice): both scored as above.
images: the same as commands on the log-mel images' 249 validation speakers (70 of them said a
  command 4 times or more; 654 held-out clips), enrolled from the images' features directly (no
  audio: no trimming or centring, which Speech Commands clips do not need). Ten times the wav
  validation speakers' clips, and harder ones: this is where enrollment methods are chosen. Each
  personal model is scored with each `--blend` share (the adapted top layer moved that share back
  towards the base weights, `EnrollConfig.keep_base_share`), from one adaptation. World: the image
  validation clips of the other speakers, the wav validation split, the coffee orders. With every
  candidate share and auto scored, "blend checked" is the rule with the alarm check that was measured
  and removed (raised while the training coffee orders fire more than for the base model).
words: new words chosen on validation speakers, not on FSDD's (where they are reported): the ten digits
  of the log-mel images' validation speakers (62-88 clips each) enrolled as ten new words from N clips
  per digit, each from another speaker (a draw), scored on the other validation speakers' digits and,
  for what the rest of the world gets, on the validation clips that are not digits. Several draws and
  seeds: the spread says how much an enrollment depends on chance. Not one voice (no validation speaker
  says a digit more than three times), so harder than FSDD; the place to choose new-word settings.
All: every personal model is also scored on what the rest of the world gets: the wav validation
split (12 classes, as `speechcmd evaluate`) and false alarms on the 60 held-out coffee orders
(runs/coffee_heldout, made by scripts/train_shipped_model.sh), next to the base model's figures.
"""
from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from audio.features import LogMel
from audio.io import find_audio_files, read_audio
from model import data, feature_data
from model.checkpoint import default_model_dir, load_checkpoint
from model.enroll import EnrollConfig, adapt, choose_base_share, enroll, unknown_crops
from model.replay_bank import load_replay_bank
from model.takes import Take, check_take
from model.evaluate import feature_posteriors
from model.labels import COMMANDS, UNKNOWN
from model.streaming import StreamingRecognizer

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
# A wake word of the Mycroft Precise community clips: a new word no model here was trained on (not even
# as `_unknown_`), said by several people (the files do not say who)
# ("hey computer" and "ey ordenador" are phrases of 1.5-3 s over noise: too long for a take)
PRECISE_WORDS = {"computer": "computer/en"}
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def world(model, validation, coffee: np.ndarray) -> dict:
    """Validation accuracy (12 classes) and false alarms per hour on the held-out coffee orders.
    Also the accuracy without the validation clips of words the user made commands: the digits are
    `_unknown_` words of Speech Commands, and a personal model that calls "five" `five` is right."""
    predicted = feature_posteriors(model.network, validation.feats).argmax(1)
    events = StreamingRecognizer(model).process(coffee).events
    hours = coffee.size / model.frontend.sample_rate_hz / 3600
    new = set(model.labels[12:])
    keep = np.array([path.split("/")[0] not in new for path in validation.paths])
    return {"validation_accuracy": round(float(np.mean(predicted == validation.labels)), 4),
            "validation_accuracy_other_words": round(float(np.mean((predicted == validation.labels)[keep])), 4),
            "coffee_false_alarms": len(events), "coffee_per_hour": round(len(events) / hours, 1),
            # which labels fired: a coffee order has no command in it, but may say "two" or "one"
            "coffee_alarm_labels": dict(sorted(Counter(e.label for e in events).items()))}


def enroll_from(files_by_word: dict[str, list[Path]], base: str, cfg: EnrollConfig):
    with tempfile.TemporaryDirectory() as tmp:
        takes = Path(tmp) / "takes"
        for word, files in files_by_word.items():
            (takes / word).mkdir(parents=True)
            for f in files:
                (takes / word / f.name).write_bytes(f.read_bytes())
        started = time.monotonic()
        enroll(takes, Path(tmp) / "model", base, cfg)
        seconds = time.monotonic() - started
        size_kb = sum(p.stat().st_size for p in (Path(tmp) / "model").iterdir()) / 1024
        weights_kb = (Path(tmp) / "model" / "model.safetensors").stat().st_size / 1024
        return load_checkpoint(Path(tmp) / "model"), seconds, size_kb, weights_kb


def predictions(model, clips: list[np.ndarray]) -> list[str]:
    feats = LogMel(model.frontend)(torch.from_numpy(np.stack(clips)))
    return [model.labels[p] for p in feature_posteriors(model.network, feats).argmax(1)]


def accuracy(model, clips: list[np.ndarray], truth: list[str]) -> float:
    return scores(model, clips, truth)[0]


def scores(model, clips: list[np.ndarray], truth: list[str]) -> tuple[float, dict[str, int]]:
    """Accuracy, and "said -> heard" counts of the wrong decisions, most frequent first."""
    predicted = predictions(model, clips)
    wrong = Counter(f"{t} -> {p}" for p, t in zip(predicted, truth) if p != t)
    return float(np.mean([p == t for p, t in zip(predicted, truth)])), dict(wrong.most_common())


def digit_clips(speaker: str, n_enrolled: int, cfg: EnrollConfig, fs: int, n: int) -> tuple[list, list]:
    """An FSDD speaker's takes after the first `n_enrolled` of each digit, trimmed and centred as
    enrollment does (a take the checks reject is scored as silence: it counts as wrong)."""
    recordings = SHARED / "fsdd" / "recordings"
    clips, truth = [], []
    for d, word in enumerate(DIGITS):
        for t in range(n_enrolled, 50):
            take = check_take(word, recordings / f"{d}_{speaker}_{t}.wav", cfg, fs, n)
            clips.append(take.samples if take.problem is None else np.zeros(n, np.float32))
            truth.append(word)
    return clips, truth


def command_takes(folder, split: str) -> dict[str, dict[str, list[Path]]]:
    """speaker -> command -> its clips in `split` (sorted by name), for the commands said 4 times or more."""
    root = SHARED / "speech_commands"
    by_speaker: dict[str, dict[str, list[Path]]] = defaultdict(lambda: defaultdict(list))
    for rel, label in folder.splits[split]:
        if label in COMMANDS:
            by_speaker[Path(rel).name.split("_nohash_")[0]][label].append(root / rel)
    chosen = {s: {w: sorted(f) for w, f in words.items() if len(f) >= 4} for s, words in sorted(by_speaker.items())}
    return {s: words for s, words in chosen.items() if words}


def image_command_takes(paths: list[str]) -> dict[str, dict[str, list[int]]]:
    """speaker -> command -> indices into `paths` (the image validation clips; sorted by name), for the
    commands said 4 times or more."""
    by_speaker: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, path in enumerate(paths):
        word, name = path.split("/")
        if word in COMMANDS:
            by_speaker[name.split("_nohash_")[0]][word].append(i)
    chosen = {s: {w: sorted(ix, key=lambda i: paths[i]) for w, ix in words.items() if len(ix) >= 4}
              for s, words in sorted(by_speaker.items())}
    return {s: words for s, words in chosen.items() if words}


_IMAGES: dict = {}   # what every speaker's run reads: loaded once, shared by the forked workers


def running_speech_replay(replay, coffee_files, frontend, labels, n_crops: int):
    """The replay bank plus 1 s crops of running speech (the training coffee orders, which the base
    model was trained on as `_unknown_`), labelled `_unknown_`: what a model folder could carry."""
    takes = [Take(UNKNOWN, str(p), read_audio(p, frontend.sample_rate_hz)) for p in coffee_files]
    crops = np.stack(unknown_crops(takes, frontend.clip_samples))
    crops = crops[np.linspace(0, len(crops) - 1, min(n_crops, len(crops))).astype(int)]
    feats = LogMel(frontend)(torch.from_numpy(crops)).numpy().astype(np.float16)
    extra = feature_data.FeatureSet(feats, np.full(len(feats), labels.index(UNKNOWN)), np.zeros(len(feats), bool),
                                    [f"running-{i}" for i in range(len(feats))])
    return feature_data.concat(replay, extra)


def _digit_feats(base, speaker: str, n_takes: int, cfg: EnrollConfig):
    """An FSDD speaker's first `n_takes` of each digit (the new words' takes) and the rest (to score them),
    as features with label indices after the base model's labels."""
    fs, n = base.frontend.sample_rate_hz, base.frontend.clip_samples
    recordings = SHARED / "fsdd" / "recordings"
    takes = [check_take(w, recordings / f"{d}_{speaker}_{t}.wav", cfg, fs, n) for d, w in enumerate(DIGITS)
             for t in range(n_takes)]
    takes = [t for t in takes if t.problem is None]
    frontend = LogMel(base.frontend)
    take_feats = frontend(torch.from_numpy(np.stack([t.samples for t in takes]))).numpy().astype(np.float16)
    take_labels = np.array([len(base.labels) + DIGITS.index(t.word) for t in takes])
    clips, truth = digit_clips(speaker, n_takes, cfg, fs, n)
    held_out = frontend(torch.from_numpy(np.stack(clips))).numpy().astype(np.float16)
    return take_feats, take_labels, held_out, np.array([len(base.labels) + DIGITS.index(w) for w in truth])


def _image_worker_init(model_dir: str, running_speech: int = 0, new_words: str | None = None) -> None:
    torch.set_num_threads(1)
    base = load_checkpoint(model_dir)
    fs = base.frontend.sample_rate_hz
    images, _ = feature_data.eval_features(feature_data.open_folder(SHARED / "speech_commands_logmel"),
                                           "validation", base.frontend)
    wav_validation, _ = feature_data.eval_features(feature_data.open_folder(SHARED / "speech_commands"),
                                                   "validation", base.frontend)
    coffee = np.concatenate([read_audio(p, fs) for p in find_audio_files([ROOT / "runs" / "coffee_heldout"])])
    # The training half of the coffee orders: running speech a model folder could carry, to see whether
    # alarms there foretell alarms on the held-out half
    train_files = find_audio_files([ROOT / "runs" / "coffee_train"])
    coffee_train = np.concatenate([read_audio(p, fs) for p in train_files])
    replay = load_replay_bank(model_dir, tuple(base.labels))
    if running_speech:
        replay = running_speech_replay(replay, train_files, base.frontend, tuple(base.labels), running_speech)
    _IMAGES.update(base=base, images=images, wav_validation=wav_validation, coffee=coffee, coffee_train=coffee_train,
                   replay=replay, base_predicted=feature_posteriors(base.network, images.feats).argmax(1),
                   new_words=_digit_feats(base, new_words, 5, EnrollConfig()) if new_words else None)


def _image_speaker(job) -> tuple[str, dict]:
    """One image validation speaker: adapt once, score each blend share."""
    speaker, chosen, n_takes, cfg, blends = job
    base, images = _IMAGES["base"], _IMAGES["images"]
    enrolled = [i for ix in chosen.values() for i in ix[:n_takes]]
    rest = np.array([i for ix in chosen.values() for i in ix[n_takes:]])
    others = np.array([p.split("/")[1].split("_nohash_")[0] != speaker for p in images.paths])
    take_feats, take_labels, labels = images.feats[enrolled], images.labels[enrolled], tuple(base.labels)
    if _IMAGES["new_words"] is not None:   # mixed: the digits as new words (other speakers' digits not scored)
        word_feats, word_labels, _, _ = _IMAGES["new_words"]
        take_feats, take_labels = np.concatenate([take_feats, word_feats]), np.concatenate([take_labels, word_labels])
        labels += DIGITS
        others &= np.array([p.split("/")[0] not in DIGITS for p in images.paths])
    started = time.monotonic()
    split = adapt(base, labels, take_feats, take_labels,
                  np.zeros((0,) + images.feats.shape[1:], np.float16), _IMAGES["replay"], cfg)
    seconds = time.monotonic() - started
    truth = images.labels[rest]
    row = {"words": len(chosen), "clips": len(rest), "enroll_seconds": round(seconds, 1),
           "base": round(float(np.mean(_IMAGES["base_predicted"][rest] == truth)), 4),
           "base_other_speakers": round(float(np.mean((_IMAGES["base_predicted"] == images.labels)[others])), 4)}
    for share in blends:
        blended = copy.deepcopy(split)
        if share == "auto":   # the shipped rule: the largest share the speaker's own takes allow
            clean = blended.features(torch.from_numpy(take_feats.astype(np.float32)))
            chosen_share = choose_base_share(blended, clean, torch.from_numpy(take_labels),
                                             replace(cfg, keep_base_share=None))
        elif share:
            blended.blend_with_base(share)
        model = replace(base, network=blended.write_back(len(labels)), labels=labels)
        predicted = feature_posteriors(model.network, images.feats).argmax(1)
        own = feature_posteriors(model.network, images.feats[enrolled])   # the takes it was enrolled from
        own_truth = images.labels[enrolled]
        row[f"blend {share}"] = {"personal": round(float(np.mean(predicted[rest] == truth)), 4),
                                 "takes_accuracy": round(float(np.mean(own.argmax(1) == own_truth)), 4),
                                 "takes_probability": round(float(np.mean(own[np.arange(len(own_truth)), own_truth])), 4),
                                 "other_speakers": round(float(np.mean((predicted == images.labels)[others])), 4),
                                 **({"share": chosen_share} if share == "auto" else {}),
                                 **(new_word_scores(model) if _IMAGES["new_words"] is not None else {}),
                                 # built-in commands only, as enrollment's alarm check counts them
                                 "coffee_train_alarms": sum(e.label in base.labels for e in
                                                            StreamingRecognizer(model).process(_IMAGES["coffee_train"]).events),
                                 **world(model, _IMAGES["wav_validation"], _IMAGES["coffee"])}
    return speaker, row


def new_word_scores(model) -> dict:
    _, _, held_out, truth = _IMAGES["new_words"]
    predicted = feature_posteriors(model.network, held_out).argmax(1)
    return {"new_words": round(float(np.mean(predicted == truth)), 4)}


def images_part(args, cfg: EnrollConfig) -> dict:
    folder = feature_data.open_folder(SHARED / "speech_commands_logmel")
    paths = [rel for rel, _ in folder.splits["validation"]]
    speakers = image_command_takes(paths)
    if args.speakers:
        speakers = {s: w for s, w in speakers.items() if s in args.speakers}
    if args.max_speakers:   # an even spread over the sorted names, not the first few
        names = sorted(speakers)
        keep = {names[i] for i in np.linspace(0, len(names) - 1, min(args.max_speakers, len(names))).astype(int)}
        speakers = {s: w for s, w in speakers.items() if s in keep}
    n_takes = args.takes or 3
    _image_worker_init(args.model, args.running_speech, args.new_words)   # once, here: the forked workers share it
    if args.running_speech:   # every replay clip used: the bank's and the crops
        cfg = replace(cfg, replay_clips=len(_IMAGES["replay"]))
    assert _IMAGES["images"].paths == paths, "image validation clips failed to load"
    base_alarms = world(_IMAGES["base"], _IMAGES["wav_validation"], _IMAGES["coffee"])["coffee_false_alarms"]
    base_train_alarms = len(StreamingRecognizer(_IMAGES["base"]).process(_IMAGES["coffee_train"]).events)
    jobs = [(s, w, n_takes, cfg, args.blend) for s, w in speakers.items()]
    results = {"base_coffee_alarms": base_alarms, "base_coffee_train_alarms": base_train_alarms, "speakers": {}}
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:   # forked: they share _IMAGES
        for speaker, row in pool.imap_unordered(_image_speaker, jobs):
            results["speakers"][speaker] = row
            print(f"{speaker}: {json.dumps(row)}", flush=True)
    print(f"base: {json.dumps({k: v for k, v in results.items() if k != 'speakers'})}", flush=True)
    results["pooled"] = pool_images(results["speakers"], args.blend, base_alarms, base_train_alarms, cfg,
                                    args.alarm_tolerance)
    print(f"pooled: {json.dumps(results['pooled'])}")
    return results


def _digits_draw(job) -> dict:
    """One pseudo-user of the image validation speakers: N clips of each digit from distinct speakers."""
    draw, seed, n_takes, cfg = job
    base, images = _IMAGES["base"], _IMAGES["images"]
    words = [p.split("/")[0] for p in images.paths]
    speakers = [p.split("/")[1].split("_nohash_")[0] for p in images.paths]
    rng = np.random.default_rng(1000 + draw)
    takes, held_out = [], []
    for digit in DIGITS:
        clips = [i for i, w in enumerate(words) if w == digit]
        chosen, used = [], set()
        for i in rng.permutation(clips):
            if speakers[i] not in used and len(chosen) < n_takes:
                chosen.append(i)
                used.add(speakers[i])
        takes += chosen
        held_out += [i for i in clips if speakers[i] not in used]
    labels = tuple(base.labels) + DIGITS
    take_labels = np.array([labels.index(words[i]) for i in takes])
    started = time.monotonic()
    split = adapt(base, labels, images.feats[takes], take_labels, np.zeros((0,) + images.feats.shape[1:], np.float16),
                  _IMAGES["replay"], replace(cfg, seed=seed))
    seconds = time.monotonic() - started
    model = replace(base, network=split.write_back(len(labels)), labels=labels)
    predicted = feature_posteriors(model.network, images.feats).argmax(1)
    truth = np.array([labels.index(w) if w in DIGITS else label for w, label in zip(words, images.labels)])
    digits = np.array([w in DIGITS for w in words])
    held = np.zeros(len(words), bool)
    held[held_out] = True
    mistakes = Counter(f"{labels[t]} -> {labels[p]}" for t, p in zip(truth[held], predicted[held]) if t != p)
    return {"draw": draw, "seed": seed, "new_words": round(float(np.mean(predicted[held] == truth[held])), 4),
            "clips": int(held.sum()), "enroll_seconds": round(seconds, 1),
            "other_validation": round(float(np.mean((predicted == truth)[~digits])), 4),
            "base_other_validation": round(float(np.mean((_IMAGES["base_predicted"] == images.labels)[~digits])), 4),
            # running speech (the training coffee orders, not the held-out half): built-in commands' alarms,
            # and the new words' detections (an order may say "two")
            **alarms_by_kind(model, base),
            "mistakes": dict(mistakes.most_common(6))}


def alarms_by_kind(model, base) -> dict:
    events = StreamingRecognizer(model).process(_IMAGES["coffee_train"]).events
    return {"coffee_train_alarms": sum(e.label in base.labels for e in events),
            "coffee_train_new_words": dict(Counter(e.label for e in events if e.label not in base.labels))}


def words_part(args, cfg: EnrollConfig) -> dict:
    """`words` (module docstring): draws x seeds, adapted two at a time."""
    _image_worker_init(args.model)
    jobs = [(draw, seed, args.takes or 5, cfg) for draw in range(args.draws) for seed in args.seeds]
    rows = []
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:   # forked: they share _IMAGES
        for row in pool.imap_unordered(_digits_draw, jobs):
            rows.append(row)
            print(json.dumps(row), flush=True)
    new_words = np.array([r["new_words"] for r in rows])
    other = np.array([r["other_validation"] for r in rows])
    return {"runs": len(rows), "new_words_mean": round(float(new_words.mean()), 4),
            "new_words_std": round(float(new_words.std()), 4), "new_words_min": float(new_words.min()),
            "other_validation_mean": round(float(other.mean()), 4),
            "base_other_validation": rows[0]["base_other_validation"],
            "coffee_train_alarms_mean": round(float(np.mean([r["coffee_train_alarms"] for r in rows])), 2),
            "coffee_train_new_words_mean": round(float(np.mean([sum(r["coffee_train_new_words"].values())
                                                                for r in rows])), 2),
            "base_coffee_train_alarms": len(StreamingRecognizer(_IMAGES["base"]).process(_IMAGES["coffee_train"]).events),
            "enroll_seconds_mean": round(float(np.mean([r["enroll_seconds"] for r in rows])), 1), "rows": rows}


def alarm_checked(row: dict, base_train_alarms: int, cfg: EnrollConfig, tolerance: int) -> dict | None:
    """The rule with the alarm check (once model/enroll.py `hold_alarms`, removed), from the scored shares:
    the takes' share, raised up the candidates while the model fires more often than the base model
    on the training coffee orders (what a model folder carries as running speech)."""
    if "blend auto" not in row or any(f"blend {c:g}" not in row for c in cfg.base_share_candidates):
        return None
    chosen = row["blend auto"]
    for share in sorted(c for c in cfg.base_share_candidates if c > row["blend auto"]["share"]):
        if chosen["coffee_train_alarms"] <= base_train_alarms + tolerance:
            break
        chosen = {**row[f"blend {share:g}"], "share": share}
    return chosen


def pool_images(rows_by_speaker: dict, blends: list[str], base_alarms: int, base_train_alarms: int,
                cfg: EnrollConfig, tolerance: int = 1) -> dict:
    rows = list(rows_by_speaker.values())
    for row in rows:
        checked = alarm_checked(row, base_train_alarms, cfg, tolerance)
        if checked is not None:
            row["blend checked"] = checked
    total = sum(r["clips"] for r in rows)
    pooled = {"speakers": len(rows), "clips": total, "base": round(sum(r["base"] * r["clips"] for r in rows) / total, 4)}
    for share in list(blends) + (["checked"] if "blend checked" in rows[0] else []):
        key = f"blend {share}"
        pooled[key] = {
            "personal": round(sum(r[key]["personal"] * r["clips"] for r in rows) / total, 4),
            "below_base": sum(r[key]["personal"] < r["base"] for r in rows),
            "forgetting_images_pt": round(100 * float(np.mean([r["base_other_speakers"] - r[key]["other_speakers"] for r in rows])), 2),
            "wav_validation": round(float(np.mean([r[key]["validation_accuracy"] for r in rows])), 4),
            "coffee_alarms": round(float(np.mean([r[key]["coffee_false_alarms"] for r in rows])), 2),
            "max_coffee_alarms": max(r[key]["coffee_false_alarms"] for r in rows),
            "above_base_alarms": sum(r[key]["coffee_false_alarms"] > base_alarms for r in rows),
            "coffee_train_alarms": round(float(np.mean([r[key]["coffee_train_alarms"] for r in rows])), 2)}
        if "new_words" in rows[0][key]:
            pooled[key]["new_words"] = round(float(np.mean([r[key]["new_words"] for r in rows])), 4)
    return pooled


def pool_log(path: str, cfg: EnrollConfig, base_alarms: int | None, base_train_alarms: int | None,
             tolerance: int = 1) -> dict:
    """An images run's printed rows pooled again (with the alarm check): `images --from-log LOG`."""
    rows, base = {}, None
    for line in Path(path).read_text().splitlines():
        name, _, rest = line.partition(": ")
        if name == "base":
            base = json.loads(rest)
        elif len(name) == 8 and rest.startswith("{"):
            rows[name] = json.loads(rest)
    if base is None:   # a run from before the base line was printed
        if base_alarms is None or base_train_alarms is None:
            raise SystemExit(f"{path}: no 'base:' line: give --base-alarms and --base-train-alarms")
        base = {"base_coffee_alarms": base_alarms, "base_coffee_train_alarms": base_train_alarms}
    blends = [k.split(" ", 1)[1] for k in next(iter(rows.values())) if k.startswith("blend ")]
    return pool_images(rows, blends, base["base_coffee_alarms"], base["base_coffee_train_alarms"], cfg, tolerance)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=("fsdd", "precise", "commands", "mixed", "images", "words"))
    parser.add_argument("--draws", type=int, default=4, help="words: pseudo-users drawn")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1],
                        help="words: enrollment seeds per draw (instead of --seed)")
    parser.add_argument("--split", default="test", choices=("validation", "test"),
                        help="commands, mixed: whose commands (choose a method on validation speakers)")
    parser.add_argument("--fsdd-speaker", default="george", help="mixed: whose digits are the new words")
    parser.add_argument("--model", default=str(default_model_dir()))
    parser.add_argument("--takes", type=int)
    parser.add_argument("--steps", type=int, default=EnrollConfig().steps)
    parser.add_argument("--personal-steps", type=int,
                        help="steps when personal units adapt (new words alone; default: --steps, as `enroll --steps`)")
    parser.add_argument("--copies", type=int, default=EnrollConfig().copies_per_take, help="augmented copies per take")
    parser.add_argument("--seed", type=int, default=EnrollConfig().seed,
                        help="enrollment's seed (augmentation, batches): how much a figure moves by chance")
    parser.add_argument("--own-share", type=float, default=EnrollConfig().own_share)
    parser.add_argument("--speakers", nargs="*", help="only these speakers")
    parser.add_argument("--extra-units", type=int, default=EnrollConfig().extra_units)
    parser.add_argument("--lr", type=float, default=EnrollConfig().learning_rate,
                        help="personal units and new words' output rows; a top layer adapted whole (re-recorded commands) "
                             "uses EnrollConfig.top_layer_learning_rate")
    parser.add_argument("--top-lr", type=float, default=EnrollConfig().top_layer_learning_rate,
                        help="a top layer adapted whole (re-recorded commands)")
    parser.add_argument("--blend", nargs="*", default=["0", "auto"],
                        help="images: base shares to score (numbers; auto: the shipped rule), from one adaptation")
    parser.add_argument("--keep-base", default="auto", help="fsdd, commands, mixed: EnrollConfig.keep_base_share "
                        "(auto: chosen on the takes, EnrollConfig.base_share_tolerance)")
    parser.add_argument("--tolerance", type=float, default=EnrollConfig().base_share_tolerance,
                        help="EnrollConfig.base_share_tolerance")
    parser.add_argument("--running-speech", type=int, default=0, metavar="N",
                        help="images: replay also N 1 s crops of the training coffee orders as _unknown_")
    parser.add_argument("--new-words", metavar="FSDD_SPEAKER",
                        help="images: also enroll the ten digits as new words from 5 takes of this FSDD speaker")
    parser.add_argument("--threads", type=int, default=EnrollConfig().threads,
                        help="fsdd, commands, mixed: torch threads while adapting (1 when two benchmarks share the cores)")
    parser.add_argument("--max-speakers", type=int, help="images: this many speakers, spread over the names")
    parser.add_argument("--from-log", metavar="LOG", help="images: pool a finished run's printed rows again "
                        "(with the alarm check, 'blend checked'), adapting nothing")
    parser.add_argument("--base-alarms", type=int, help="--from-log: the base model's held-out coffee alarms")
    parser.add_argument("--base-train-alarms", type=int, help="--from-log: its alarms on the training orders")
    parser.add_argument("--alarm-tolerance", type=int, default=1,
                        help="images: alarms above the base's that the 'blend checked' rule allows")
    parser.add_argument("--workers", type=int, default=2, help="images: speakers adapted at once (one thread each)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = EnrollConfig(steps=args.steps, personal_steps=args.personal_steps or args.steps, seed=args.seed,
                       copies_per_take=args.copies, own_share=args.own_share,
                       extra_units=args.extra_units, learning_rate=args.lr, top_layer_learning_rate=args.top_lr,
                       keep_base_share=None if args.keep_base == "auto" else float(args.keep_base),
                       base_share_tolerance=args.tolerance,
                       threads=args.threads)
    args.blend = [b if b == "auto" else float(b) for b in args.blend]
    if args.part == "images" and args.from_log:
        print(json.dumps(pool_log(args.from_log, cfg, args.base_alarms, args.base_train_alarms, args.alarm_tolerance)))
        return
    if args.part == "images":
        print(json.dumps(images_part(args, replace(cfg, keep_base_share=0.0))))
        return
    if args.part == "words":
        result = words_part(args, cfg)
        print(f"pooled: {json.dumps({k: v for k, v in result.items() if k != 'rows'})}")
        return
    base = load_checkpoint(args.model)
    fs, n = base.frontend.sample_rate_hz, base.frontend.clip_samples
    folder = feature_data.open_folder(SHARED / "speech_commands")
    validation, _ = feature_data.eval_features(folder, "validation", base.frontend)
    coffee = np.concatenate([read_audio(p, fs) for p in find_audio_files([ROOT / "runs" / "coffee_heldout"])])
    results = {"base": world(base, validation, coffee), "speakers": {}}
    print(f"base model: {results['base']}", flush=True)

    if args.part == "fsdd":
        n_takes = args.takes or 5
        recordings = SHARED / "fsdd" / "recordings"
        for speaker in args.speakers or ("george", "jackson", "lucas"):
            files = {w: [recordings / f"{d}_{speaker}_{t}.wav" for t in range(n_takes)] for d, w in enumerate(DIGITS)}
            model, seconds, size_kb, weights_kb = enroll_from(files, args.model, cfg)
            clips, truth = digit_clips(speaker, n_takes, cfg, fs, n)
            digits_accuracy, digits_mistakes = scores(model, clips, truth)
            row = {"accuracy": round(digits_accuracy, 4), "clips": len(truth), "mistakes": digits_mistakes,
                   "enroll_seconds": round(seconds, 1), "model_kb": round(size_kb), "weights_kb": round(weights_kb),
                   **world(model, validation, coffee)}
            results["speakers"][speaker] = row
            print(f"{speaker}: {row}", flush=True)
    elif args.part == "precise":
        n_takes = args.takes or 5
        files = {w: sorted((SHARED / "precise_community" / folder).glob("*.wav")) for w, folder in PRECISE_WORDS.items()}
        model, seconds, size_kb, weights_kb = enroll_from({w: f[:n_takes] for w, f in files.items()}, args.model, cfg)
        clips, truth, accepted = [], [], []
        for word, paths in files.items():
            for path in paths[n_takes:]:   # trimmed and centred as enrollment does; a rejected take counts as wrong
                take = check_take(word, path, cfg, fs, n)
                clips.append(take.samples if take.problem is None else np.zeros(n, np.float32))
                truth.append(word)
                accepted.append(take.problem is None)
        predicted = predictions(model, clips)
        right = [p == t for p, t in zip(predicted, truth)]
        mistakes = Counter(f"{t} -> {p}" for p, t in zip(predicted, truth) if p != t)
        results["speakers"]["precise"] = {"accuracy": round(float(np.mean(right)), 4), "clips": len(truth),
                                          "rejected_by_take_checks": accepted.count(False),
                                          "accuracy_on_accepted": round(float(np.mean([r for r, ok in zip(right, accepted) if ok])), 4),
                                          "mistakes": dict(mistakes.most_common()), "enroll_seconds": round(seconds, 1),
                                          **world(model, validation, coffee)}
        print(f"precise: {results['speakers']['precise']}", flush=True)
    else:
        n_takes = args.takes or 3
        digit_takes = {w: [SHARED / "fsdd" / "recordings" / f"{d}_{args.fsdd_speaker}_{t}.wav" for t in range(5)]
                       for d, w in enumerate(DIGITS)}
        for speaker, chosen in command_takes(folder, args.split).items():
            if args.speakers and speaker not in args.speakers:
                continue
            files = {w: f[:n_takes] for w, f in chosen.items()}
            if args.part == "mixed":
                files.update(digit_takes)
            model, seconds, size_kb, weights_kb = enroll_from(files, args.model, cfg)
            rest = [(w, p) for w, f in chosen.items() for p in f[n_takes:]]
            clips = [data.fit_length(read_audio(p, fs), n) for _, p in rest]
            truth = [w for w, _ in rest]
            row = {"words": len(chosen), "clips": len(rest), "personal": round(accuracy(model, clips, truth), 4),
                   "base": round(accuracy(base, clips, truth), 4), "enroll_seconds": round(seconds, 1),
                   "kept_base_share": model.extra.get("enrollment", {}).get("kept_base_share"),
                   **world(model, validation, coffee)}
            if args.part == "mixed":
                clips, truth = digit_clips(args.fsdd_speaker, 5, cfg, fs, n)
                new_words_accuracy, row["new_word_mistakes"] = scores(model, clips, truth)
                row["new_words"] = round(new_words_accuracy, 4)
            results["speakers"][speaker] = row
            print(f"{speaker}: {row}", flush=True)
        rows = results["speakers"].values()
        total = sum(r["clips"] for r in rows)
        results["pooled"] = {"clips": total,
                             "personal": round(sum(r["personal"] * r["clips"] for r in rows) / total, 4),
                             "base": round(sum(r["base"] * r["clips"] for r in rows) / total, 4),
                             "validation_accuracy": round(float(np.mean([r["validation_accuracy"] for r in rows])), 4)}
        if args.part == "mixed":
            results["pooled"]["new_words"] = round(float(np.mean([r["new_words"] for r in rows])), 4)
        print(f"pooled: {results['pooled']}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
