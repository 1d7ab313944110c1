"""`speechcmd`: one console script, one subcommand per job.

User errors (bad file, missing model, bad data folder, no microphone) end in one line on stderr and a
non-zero exit status, never a traceback. Exit status: 0 ok, 1 fatal error, 2 some inputs failed or
bad usage.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from desktop_app.cli_common import (MODEL_HELP, UserError, _add_actions_options,  # noqa: F401
                                    _add_detector_options, _detector_config, _load_model, _start_action_runner,
                                    print_event)


def cmd_classify(args) -> int:
    from audio.io import find_audio_files
    from model.classify import ClipClassifier
    model = _load_model(args.model)
    paths = find_audio_files(args.paths)
    if not paths:
        raise UserError("no audio files (.wav, .flac, .ogg) found in " + " ".join(args.paths))
    failed = 0
    for result in ClipClassifier(model).classify(paths):
        if result.error:
            failed += 1
            print(f"error: {result.error}", file=sys.stderr)
            if args.json:
                print(json.dumps({"path": result.path, "error": result.error}), flush=True)
            continue
        if args.json:
            print(json.dumps({"path": result.path, "label": result.label, "score": round(result.score, 4)}), flush=True)
        else:
            print(f"{result.path}\t{result.label}\t{result.score:.3f}", flush=True)
    return 2 if failed else 0


def run_detection(model, paths, detector_cfg, block_ms: float = 1000.0):
    """Yields the detection events of one or more files of any length played back to back through one
    recognizer, read block by block (memory stays flat)."""
    from audio.io import iter_audio_blocks
    from model.streaming import StreamingRecognizer
    recognizer = StreamingRecognizer(model, detector_cfg)
    for path in paths:
        for block in iter_audio_blocks(path, model.frontend.sample_rate_hz, block_ms):
            yield from recognizer.process(block).events


def cmd_detect(args) -> int:
    from audio.io import AudioReadError
    model = _load_model(args.model, streaming_only=True)
    # Only with --actions: testing a recording must not press keys or run programs unasked.
    runner = _start_action_runner(args, model.labels, uses_default=False)
    try:
        for event in run_detection(model, [args.file], _detector_config(model, args)):
            print_event(event, args.json)
            if runner is not None:
                # In order, none skipped for a run still going: the file is read faster than real
                # time; the events' own times drive the cooldowns.
                runner.handle(event, in_order=True)
    except AudioReadError as exc:
        raise UserError(str(exc)) from None
    finally:
        if runner is not None:
            runner.close(wait=True)   # each action is bounded by its timeout
    return 0


def cmd_evaluate(args) -> int:
    from audio.io import AudioReadError
    from model.data import DatasetError
    from model.evaluate import feature_posteriors, format_metrics, metrics
    from model import feature_data
    model = _load_model(args.model)
    try:
        folder = feature_data.open_folder(args.data)
        if not folder.splits[args.split]:
            raise UserError(f"{args.data} has no {args.split} clips (its list file names none)")
        clips, n_bad = feature_data.eval_features(folder, args.split, model.frontend)
    except (DatasetError, AudioReadError) as exc:
        raise UserError(str(exc)) from None
    feature_data.warn_unreadable(n_bad, len(folder.splits[args.split]), str(args.data))
    if not len(clips):
        raise UserError(f"{args.data} has no {args.split} clips")
    posteriors = feature_posteriors(model.network, clips.feats)
    result = metrics(clips.labels, posteriors.argmax(1), model.labels)
    result["split"] = args.split
    if args.json:
        print(json.dumps(result))
    else:
        print(format_metrics(f"{args.split} ({args.data})", result, model.labels))
    return 0


def cmd_train(args) -> int:
    from audio.augment import AugmentConfig
    from audio.config import FrontendConfig
    from audio.io import AudioReadError
    from model.data import DatasetError
    from model.network import NetworkConfig
    from model.train import TrainConfig, train
    net = NetworkConfig(cell=args.cell, hidden_size=args.hidden_size, n_layers=args.layers,
                        conv_channels=args.conv_channels, dropout=args.dropout, input_norm=args.input_norm)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
                      warmup_epochs=args.warmup_epochs, max_clips=args.max_clips, eval_every_epochs=args.eval_every,
                      extra_unknown_share=args.extra_unknown_share, image_silence=args.image_silence,
                      talk_share=args.talk_share, mine_frames=args.mine_frames, silence_share=args.silence_share,
                      threads=args.threads, device=args.device,
                      word_classes=tuple(args.word_classes))
    frontend = FrontendConfig() if args.frontend == "images" else FrontendConfig.legacy_v4()
    from model.model_config import ModelLoadError
    try:
        result = train(args.data, args.out, net, cfg, frontend=frontend,
                       aug=AugmentConfig(quiet_share=args.quiet_share),
                       extra_unknown=args.extra_unknown, extra_words=args.extra_words,
                       show_progress=not args.quiet, talk=args.talk, init_from=args.init)
    except (DatasetError, ModelLoadError, AudioReadError, ValueError) as exc:
        raise UserError(str(exc)) from None
    if not result.report:   # a rank other than 0 under torchrun: rank 0 reports
        return 0
    for split, row in result.report["splits"].items():
        if split != "train":
            print(f"{split} accuracy: {row['accuracy']:.4f} ({row['clips']} clips)")
    print(f"model written to {args.out}")
    return 0


def _print_skipped(takes) -> None:
    for take in takes:
        print(f"skipped: {take.path}: {take.problem}", file=sys.stderr)


def cmd_enroll(args) -> int:
    from model.enroll import EnrollConfig, EnrollError, enroll   # adapts on EnrollConfig.threads
    from model.model_config import default_model_dir
    base = args.model or str(default_model_dir())
    try:
        keep_base = None if args.keep_base == "auto" else float(args.keep_base)
    except ValueError:
        keep_base = -1.0
    if keep_base is not None and not 0.0 <= keep_base <= 1.0:
        raise UserError(f"--keep-base must be auto or a number from 0 to 1, not {args.keep_base}")
    steps = {} if args.steps is None else {"steps": args.steps, "personal_steps": args.steps}
    cfg = EnrollConfig(min_takes=args.min_takes, extra_units=args.personal_units, keep_base_share=keep_base, **steps)
    try:
        result = enroll(args.takes, args.out, base, cfg)
    except EnrollError as exc:
        _print_skipped(exc.skipped)   # what the one-line error refers to, first
        raise UserError(str(exc)) from None
    _print_skipped(result.skipped)
    for line in result.warnings:
        print(f"warning: {line}", file=sys.stderr)
    words = sorted({t.word for t in result.used})
    if args.json:
        print(json.dumps({"model": str(result.out_dir), "labels": list(result.labels), "new_words": result.new_words,
                          "takes_used": {w: sum(t.word == w for t in result.used) for w in words},
                          "takes_skipped": [{"path": t.path, "problem": t.problem} for t in result.skipped],
                          "warnings": result.warnings, "seconds": round(result.seconds, 1)}))
    else:
        counts = ", ".join(f"{w} {sum(t.word == w for t in result.used)}" for w in words)
        new = f"; new words: {', '.join(result.new_words)}" if result.new_words else ""
        print(f"enrolled from {len(result.used)} takes ({counts}){new} in {result.seconds:.0f} s")
        print(f"personal model written to {result.out_dir} (use it with --model {result.out_dir})")
    return 0


def cmd_make_stream(args) -> int:
    import soundfile as sf
    from audio.config import FrontendConfig
    from model.data import DatasetError
    from model.stream_eval import StreamConfig, make_stream, write_labels
    frontend = FrontendConfig()
    try:
        samples, spans = make_stream(args.data, args.split, StreamConfig(seconds=args.seconds, seed=args.seed), frontend)
    except DatasetError as exc:
        raise UserError(str(exc)) from None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        sf.write(out, samples, frontend.sample_rate_hz, subtype="PCM_16")
    except (RuntimeError, OSError) as exc:   # soundfile's errors are RuntimeErrors
        raise UserError(f"cannot write {out} ({str(exc).splitlines()[-1]})") from None
    labels = Path(args.labels) if args.labels else out.with_suffix(".csv")
    write_labels(labels, spans)
    n_commands = sum(s.label != "_unknown_" for s in spans)
    print(f"wrote {out} ({args.seconds:.0f} s, {n_commands} command words, {len(spans) - n_commands} unknown) and {labels}")
    return 0


def cmd_stream_eval(args) -> int:
    import soundfile as sf
    from audio.io import AudioReadError, find_audio_files
    from model.stream_eval import read_labels, score_stream
    model = _load_model(args.model, streaming_only=True)
    wavs = find_audio_files([args.wav])
    if not wavs:
        raise UserError(f"no audio files (.wav, .flac, .ogg) in {args.wav}")
    try:
        spans = read_labels(args.labels) if args.labels else []
        events = list(run_detection(model, wavs, _detector_config(model, args)))
        seconds = sum(sf.info(str(path)).duration for path in wavs)
    except (AudioReadError, ValueError, OSError) as exc:
        raise UserError(str(exc)) from None
    result = score_stream(events, spans, seconds).as_dict()
    result["detector"] = _detector_config(model, args).to_dict()
    if args.json:
        print(json.dumps(result))
    elif spans:
        print(f"{result['words']} command words in {seconds:.0f} s: matched {result['matched_pct']:.1f}%, "
              f"correct {result['correct_pct']:.1f}%, wrong {result['wrong_pct']:.1f}%, "
              f"false positives {result['false_positive_pct']:.1f}% "
              f"({result['false_alarms_per_hour']:.1f} per hour)")
    else:
        print(f"{result['false_positives']} false alarms in {seconds / 60:.1f} min of audio without commands: "
              f"{result['false_alarms_per_hour']:.2f} per hour")
    return 0


def cmd_tune_detector(args) -> int:
    """Grid-search the detector on a validation stream; report test-stream and false-alarm figures."""
    from audio.io import AudioReadError, find_audio_files, read_audio
    from model.checkpoint import CONFIG_FILE
    from model.data import DatasetError
    from model.stream_eval import StreamConfig, make_stream, score_stream
    from model.tune import grid_search, pooled_score, replay, stream_posteriors, threshold_curve
    model = _load_model(args.model)
    fs = model.frontend.sample_rate_hz
    # Tuned on several validation streams pooled (one 600 s stream holds only ~140 command words);
    # the test speakers' stream (seed --seed) is only scored.
    seeds = {"validation": [args.seed + i for i in range(args.validation_streams)], "test": [args.seed]}
    streams = {}
    try:
        for split, split_seeds in seeds.items():
            streams[split] = []
            for seed in split_seeds:
                samples, spans = make_stream(args.data, split, StreamConfig(seconds=args.seconds, seed=seed),
                                             model.frontend)
                streams[split].append((stream_posteriors(model, samples), spans, args.seconds))
        negatives = [read_audio(p, fs) for p in find_audio_files(args.false_alarm_audio)] if args.false_alarm_audio else []
        if args.tuning_negatives:
            # Speech without commands that the choice may see (not the held-out audio): one more
            # validation "stream" with no command words, so its alarms count as false positives.
            joined = np.concatenate([read_audio(p, fs) for p in find_audio_files(args.tuning_negatives)])
            streams["validation"].append((stream_posteriors(model, joined), [], joined.size / fs))
    except (DatasetError, AudioReadError) as exc:
        raise UserError(str(exc)) from None
    best, best_val, _ = grid_search(model, streams["validation"], args.isolation_gate)
    test = pooled_score(model, streams["test"], best)
    summary = {"chosen": best.to_dict(), "validation": best_val, "test": test}
    if negatives:
        # Played back to back through one recognizer state, as one long recording would be.
        joined = np.concatenate(negatives)
        fa = score_stream(replay(model, stream_posteriors(model, joined), best), [], joined.size / fs).as_dict()
        summary["false_alarm_audio"] = {"minutes": joined.size / fs / 60, "false_alarms": fa["false_positives"],
                                        "per_hour": fa["false_alarms_per_hour"]}
    curves = {split: threshold_curve(model, streams[split], best) for split in ("validation", "test")}
    summary["curves"] = {split: [{"threshold": t, "correct_pct": s["correct_pct"],
                                  "false_alarms_per_hour": s["false_alarms_per_hour"]} for t, s in rows]
                         for split, rows in curves.items()}
    if args.plot:
        _plot_curves(args.plot, curves, best)
    if args.write:
        config_path = Path(model.path) / CONFIG_FILE
        config = json.loads(config_path.read_text())
        config["detector"] = best.to_dict()
        config.setdefault("metrics", {})["streaming"] = {k: v for k, v in summary.items() if k != "curves"}
        config_path.write_text(json.dumps(config, indent=2) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


def _plot_curves(path, curves, chosen) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for split, rows in curves.items():
        ax.plot([s["false_alarms_per_hour"] for _, s in rows], [s["correct_pct"] for _, s in rows], marker="o",
                markersize=3, label=f"{split} speakers")
        for threshold, s in rows:
            if abs(threshold - chosen.threshold) < 1e-6:
                ax.annotate(f"threshold {threshold:.2f}", (s["false_alarms_per_hour"], s["correct_pct"]),
                            textcoords="offset points", xytext=(8, -12), fontsize=8)
    ax.set_xlabel("false alarms per hour (unknown-word slots and gaps)")
    ax.set_ylabel("command words detected correctly (%)")
    ax.set_title(f"Detection across thresholds (smoothing {chosen.smoothing_ms:.0f} ms, "
                 f"suppression {chosen.suppression_ms:.0f} ms)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cmd_demo(args) -> int:
    """Classify the bundled clips, then find the commands in the bundled recording."""
    import assets
    demo_dir = Path(assets.__file__).resolve().parent / "demo"
    clips = sorted((demo_dir / "clips").glob("*.wav"))
    print(f"Classifying {len(clips)} bundled clips (file name = what was said):")
    rc = cmd_classify(argparse.Namespace(model=args.model, paths=[str(p) for p in clips], json=False))
    stream = demo_dir / "demo_stream.wav"
    print(f"\nCommands found in {stream.name} (spoken at the times listed in {stream.stem}.csv):")
    detect_rc = cmd_detect(argparse.Namespace(model=args.model, file=str(stream), json=False,
                                              threshold=None, smoothing_ms=None, suppression_ms=None))
    return rc or detect_rc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speechcmd", description="Speech-command recognizer (streaming GRU).")
    sub = parser.add_subparsers(dest="command", required=True)
    model_help = MODEL_HELP

    p = sub.add_parser("classify", help="label 1-second clips (files or folders)")
    p.add_argument("paths", nargs="+")
    p.add_argument("--json", action="store_true", help="JSON Lines output")
    p.add_argument("--model", help=model_help)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("detect", help="find the commands spoken in a recording of any length")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="JSON Lines output")
    p.add_argument("--model", help=model_help)
    _add_actions_options(p, uses_default=False)
    _add_detector_options(p)
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("evaluate", help="accuracy on a split of a Speech Commands folder")
    p.add_argument("--data", required=True, help="Speech Commands folder (wav, or log-mel images: no silence clips)")
    p.add_argument("--split", choices=("validation", "test"), default="validation")
    p.add_argument("--json", action="store_true")
    p.add_argument("--model", help=model_help)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train", help="train a model on Speech Commands folders (wav or log-mel images)")
    p.add_argument("--data", required=True, nargs="+",
                   help="Speech Commands folders: audio clips, or the log-mel images (yes/*.jpg)")
    p.add_argument("--frontend", choices=("images", "v4"), default="images",
                   help="images: the log-mel image set's frontend (30 ms frames, 0-4 kHz, pixel scale; "
                        "needed for image folders); v4: the older 25 ms, 20-7600 Hz natural-log frontend")
    p.add_argument("--out", required=True, help="folder for the checkpoint and reports")
    p.add_argument("--cell", choices=("gru", "lstm", "rnn"), default="gru")
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--conv-channels", type=int, default=64, help="0 = no convolution")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--input-norm", choices=("fixed", "pcen"), default="fixed",
                   help="fixed per-bin normalisation, or PCEN (causal per-channel energy normalisation)")
    from model.train_config import TrainConfig   # no torch: the defaults shown are the ones train uses
    recipe = TrainConfig()
    p.add_argument("--epochs", type=int, default=recipe.epochs)
    p.add_argument("--warmup-epochs", type=int, default=recipe.warmup_epochs, help="epochs of rising learning rate")
    p.add_argument("--batch-size", type=int, default=recipe.batch_size)
    p.add_argument("--lr", type=float, default=recipe.learning_rate)
    p.add_argument("--seed", type=int, default=recipe.seed)
    p.add_argument("--eval-every", type=int, default=recipe.eval_every_epochs, help="epochs between validation runs")
    p.add_argument("--max-clips", type=int, default=0, help="use only this many clips per split (quick runs)")
    p.add_argument("--extra-unknown", nargs="*", default=[], help="more non-command speech (files/folders)")
    p.add_argument("--extra-words", nargs="*", default=[],
                   help="folders of word folders (e.g. synthetic speech) added to training, labelled by folder")
    p.add_argument("--word-classes", nargs="*", default=list(recipe.word_classes), metavar="WORD",
                   help="other words (data folder names) told apart by a training-only word head, so that the "
                        "network's representation separates words beyond the commands (helps enrolled words)")
    p.add_argument("--extra-unknown-share", type=float, default=recipe.extra_unknown_share,
                   help="extra unknown clips per training word clip, split evenly between the paths")
    p.add_argument("--talk", nargs="*", default=[],
                   help="command-free running speech (files/folders), trained as _unknown_ on every frame")
    p.add_argument("--silence-share", type=float, default=recipe.silence_share,
                   help="generated _silence_ examples per training clip, each epoch")
    p.add_argument("--talk-share", type=float, default=recipe.talk_share, help="talk sequences per batch row")
    p.add_argument("--mine-frames", type=int, default=recipe.mine_frames,
                   help="the talk frames closest to firing a command, trained again (half the talk rows end there)")
    p.add_argument("--quiet-share", type=float, default=0.0,
                   help="share of clips made 8-40 dB quieter (a quiet microphone; the usual gain is +-8 dB)")
    p.add_argument("--init", help="start from this model folder's weights (fine-tuning; same network)")
    p.add_argument("--image-silence", choices=("auto", "always", "never"), default="auto",
                   help="the image set's _silence_ crops; auto: only when no wav folder has _background_noise_ "
                        "(the crops come from the same recordings and may hold the wav set's held-out noise)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for training (0: torch's default)")
    p.add_argument("--device", default="cpu", help='where the network trains: "cpu" or "cuda" (batches are made on the CPU)')
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("enroll", help="adapt a model to your voice and words from a few recordings")
    p.add_argument("--takes", required=True,
                   help="folder of word folders with your recordings (yes/1.wav, lights/1.wav; a new name is a "
                        "new command; _unknown_/ for you talking normally)")
    p.add_argument("--out", required=True, help="folder for the personal model (must not exist or be empty)")
    p.add_argument("--model", help="base model folder (default: the shipped model in assets/model)")
    from model.takes import EnrollConfig   # no torch: the defaults shown are the ones enroll uses
    p.add_argument("--min-takes", type=int, default=EnrollConfig.min_takes, help="good takes each word needs")
    default_steps = (str(EnrollConfig.steps) if EnrollConfig.personal_steps == EnrollConfig.steps else
                     f"{EnrollConfig.personal_steps} for new words without commands, {EnrollConfig.steps} otherwise")
    p.add_argument("--steps", type=int, help=f"adaptation steps (default {default_steps})")
    p.add_argument("--keep-base", default="auto",
                   help="when built-in commands are re-recorded: the share of the way the adapted "
                        "top layer is moved back to the base model's weights afterwards, 0 (not at all) to 1 (the base "
                        "model); less forgetting of other voices for some of the gain on yours. auto (default): the "
                        "largest share at which your takes are still recognized as well (docs/ENROLL.md)")
    p.add_argument("--personal-units", type=int, default=EnrollConfig.extra_units,
                   help="for new words: units added to the top GRU layer while the base model's stay frozen (the "
                        "built-in commands keep the base model's probabilities); 0: the whole top layer adapts, as it "
                        "always does when a built-in command is re-recorded")
    p.add_argument("--json", action="store_true", help="one JSON object with what was done")
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("make-stream", help="build a long test recording with a labels CSV (TF streaming test style)")
    p.add_argument("--data", required=True, help="Speech Commands folder")
    p.add_argument("--split", choices=("validation", "test"), required=True)
    p.add_argument("--out", required=True, help="WAV to write")
    p.add_argument("--labels", help="labels CSV to write (default: the WAV name with .csv)")
    p.add_argument("--seconds", type=float, default=600.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_make_stream)

    p = sub.add_parser("stream-eval", help="streaming accuracy on a recording with a labels CSV")
    p.add_argument("--wav", required=True, help="recording (or a folder of recordings played back to back)")
    p.add_argument("--labels", help="labels CSV from make-stream; without it every detection is a false alarm")
    p.add_argument("--json", action="store_true")
    p.add_argument("--model", help=model_help)
    _add_detector_options(p)
    p.set_defaults(func=cmd_stream_eval)

    p = sub.add_parser("tune-detector", help="choose smoothing/threshold/suppression on validation streams")
    p.add_argument("--data", required=True, help="Speech Commands folder")
    p.add_argument("--model", help=model_help)
    p.add_argument("--seconds", type=float, default=600.0, help="length of each generated stream")
    p.add_argument("--seed", type=int, default=0, help="seed of the test stream and of the first validation stream")
    p.add_argument("--validation-streams", type=int, default=3,
                   help="validation streams (seeds --seed, --seed + 1, ...) pooled for the choice")
    p.add_argument("--false-alarm-audio", nargs="*", help="recordings without commands (e.g. coffee_orders)")
    p.add_argument("--isolation-gate", type=float, default=0.0,
                   help="fixed isolation gate for every setting tried (0 = off; see docs/PERFORMANCE.md)")
    p.add_argument("--tuning-negatives", nargs="*",
                   help="speech without commands that the choice counts (its alarms are false positives of "
                        "the validation streams), e.g. the training coffee orders; never the held-out audio")
    p.add_argument("--plot", help="PNG for the correct-words vs false-alarms curve")
    p.add_argument("--write", action="store_true", help="store the chosen values as the model's defaults")
    p.set_defaults(func=cmd_tune_detector)

    p = sub.add_parser("demo", help="classify the bundled clips and detect commands in the bundled recording")
    p.add_argument("--model", help=model_help)
    p.set_defaults(func=cmd_demo)

    from desktop_app.det_cli import add_det_command
    add_det_command(sub, model_help)
    from desktop_app.live_cli import add_live_commands
    add_live_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The one place where the errors a user can fix become one line (none of these imports torch).
    from audio.io import AudioReadError
    from model.data import DatasetError
    from model.model_config import ModelLoadError
    try:
        return args.func(args)
    except (UserError, AudioReadError, DatasetError, ModelLoadError) as exc:
        print(f"speechcmd: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:   # an unwritable --out, a full disk, a file that vanished mid-run
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"speechcmd: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
