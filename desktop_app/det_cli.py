"""`speechcmd det`: commands found against false alarms per hour of talk, over a sweep of thresholds."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from desktop_app.cli_common import UserError, _load_model


def cmd_det(args) -> int:
    from dataclasses import replace

    from audio.io import AudioReadError, find_audio_files, read_audio
    from model.checkpoint import CONFIG_FILE
    from model.data import DatasetError
    from model.labels import COMMANDS
    from model.det import TalkSet, det_rows, headline, plot
    from model.stream_eval import StreamConfig, make_stream
    from model.tune import stream_posteriors

    models = [_load_model(path) for path in [args.model, *args.compare]]
    fs = models[0].frontend.sample_rate_hz
    try:
        stream_audio = [make_stream(args.data, args.split, StreamConfig(seconds=args.seconds, seed=args.seed + i),
                                    models[0].frontend) for i in range(args.streams)] if args.data else []
        talk_audio = []
        for path in args.talk:
            files = find_audio_files([path])
            if not files:
                raise UserError(f"{path}: no audio files")
            talk_audio.append((str(path).rstrip("/"), [read_audio(f, fs) for f in files]))   # paths name the sets
    except (DatasetError, AudioReadError) as exc:
        raise UserError(str(exc)) from None
    if not stream_audio and not talk_audio:
        raise UserError("nothing to measure: give --data (command streams) and/or --talk (command-free speech)")

    results, curves = {}, {}
    for path, model in zip([args.model or "shipped model", *args.compare], models):
        streams = [(stream_posteriors(model, samples), spans, samples.size / fs) for samples, spans in stream_audio]
        talk = [TalkSet(name, [stream_posteriors(model, s) for s in files], sum(s.size for s in files) / fs / 3600)
                for name, files in talk_audio]
        # The network runs once; each gate (and the threshold sweep) replays the detector.
        for gate in args.isolation_gate or [model.detector.isolation_gate]:
            cfg = replace(model.detector, isolation_gate=gate)
            if args.smoothing_ms is not None:
                cfg = replace(cfg, smoothing_ms=args.smoothing_ms)
            name = str(path) if not args.isolation_gate else f"{path} gate {gate:g}"
            rows = det_rows(model, streams, talk, cfg)
            results[name] = {
                "detector": {k: v for k, v in cfg.to_dict().items() if k != "threshold"},
                "command_words": sum(sum(s.label in COMMANDS for s in spans) for _, spans in stream_audio),
                "stream_hours": sum(s.size for s, _ in stream_audio) / fs / 3600,
                "talk_hours": {t.name: round(t.hours, 6) for t in talk},
                "headline": headline(rows, args.max_alarms_per_hour, args.min_found_pct),
                "rows": rows,
            }
            curves[Path(str(path)).name + ("" if not args.isolation_gate else f" gate {gate:g}")] = rows
            if not args.json:
                _print_table(name, results[name], talk)
    if args.json:
        print(json.dumps(results, indent=1))
    if args.plot and stream_audio and talk_audio:
        hours = sum(t.hours for t in talk)
        plot(args.plot, curves, f"{args.split} streams ({args.streams} x {args.seconds:.0f} s) against "
                                f"{hours:.2f} h of talk ({', '.join(n for n, _ in talk_audio)})")
    if args.write:
        if args.compare or len(args.isolation_gate or []) > 1:
            raise UserError("--write takes one model and at most one --isolation-gate")
        chosen = next(iter(results.values()))["headline"][f"threshold_at_{args.max_alarms_per_hour:g}_per_hour"]
        if chosen is None:
            raise UserError(f"no threshold reaches {args.max_alarms_per_hour:g} alarms per hour; nothing written")
        config_path = Path(models[0].path) / CONFIG_FILE
        config = json.loads(config_path.read_text())
        gate = {"isolation_gate": args.isolation_gate[0]} if args.isolation_gate else {}
        config["detector"] = {**config.get("detector", {}), "threshold": chosen, **gate}
        config_path.write_text(json.dumps(config, indent=2) + "\n")
        print(f"threshold {chosen} written to {config_path}", file=sys.stderr)
    return 0


def _print_table(name: str, result: dict, talk) -> None:
    talk_desc = ", ".join(f"{n} {h * 60:.1f} min" for n, h in result["talk_hours"].items())
    print(f"{name}: {result['command_words']} words in {result['stream_hours'] * 60:.0f} min of streams; "
          f"talk: {talk_desc}")
    print(f"detector: {result['detector']}")
    columns = ["threshold", "found_pct", "wrong_pct", "alarms_per_hour", "alarms", *[f"alarms_{t.name}" for t in talk]]
    rows = [r for r in result["rows"] if round(r["threshold"] * 100) % 5 == 0]
    names = [c.removeprefix("alarms_") if c.startswith("alarms_") and c != "alarms_per_hour" else c for c in columns]
    widths = [max(10, len(n)) for n in names]
    print("  ".join(f"{n:>{w}}" for n, w in zip(names, widths)))
    for row in rows:
        print("  ".join(f"{row[c]:{w}.2f}" if isinstance(row.get(c), float) else f"{row.get(c, ''):>{w}}"
                        for c, w in zip(columns, widths)))
    print("headline: " + ", ".join(f"{k} {v if v is None else round(v, 2)}" for k, v in result["headline"].items()))
    print()


def add_det_command(sub, model_help: str) -> None:
    p = sub.add_parser("det", help="commands found vs false alarms per hour of talk, over a threshold sweep")
    p.add_argument("--model", help=model_help)
    p.add_argument("--compare", nargs="*", default=[], help="more model folders, measured on the same audio")
    p.add_argument("--data", help="Speech Commands folder whose --split speakers make the command streams")
    p.add_argument("--split", choices=("validation", "test"), default="validation")
    p.add_argument("--streams", type=int, default=3, help="streams of --seconds each (seeds --seed, --seed + 1, ...)")
    p.add_argument("--seconds", type=float, default=600.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--talk", nargs="*", default=[],
                   help="command-free speech, one set per path (file or folder), each file from a fresh state")
    p.add_argument("--isolation-gate", type=float, nargs="*",
                   help="isolation gates to measure instead of the model's (one curve each)")
    p.add_argument("--smoothing-ms", type=float, help="override the model's smoothing window")
    p.add_argument("--max-alarms-per-hour", type=float, default=1.0, help="headline: commands found at this rate")
    p.add_argument("--min-found-pct", type=float, default=95.0, help="headline: alarms per hour at this share found")
    p.add_argument("--plot", help="PNG of the curve (commands found vs alarms per hour)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--write", action="store_true",
                   help="store the threshold of the headline (most found at --max-alarms-per-hour) in --model; "
                        "use validation audio only")
    p.set_defaults(func=cmd_det)
