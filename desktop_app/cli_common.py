"""What every `speechcmd` subcommand shares: the user-error type, model loading, the detector
options and event printing. Both desktop_app/cli.py and desktop_app/live_cli.py import it, neither
imports the other's internals (no import circle). No torch, no Qt here.
"""
from __future__ import annotations

import argparse
import json

MODEL_HELP = "model folder (default: the shipped model in assets/model)"


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


def _load_model(model_dir: str | None, streaming_only: bool = False):
    """The model for a command; `streaming_only` commands (detect, stream-eval, listen) get the
    torch-free NumpyModel where the network allows it: they start faster and use less memory."""
    from model.model_config import ModelLoadError, default_model_dir
    try:
        if streaming_only:
            from model.streaming import load_streaming_model
            return load_streaming_model(model_dir or default_model_dir())
        from model.checkpoint import load_checkpoint
        return load_checkpoint(model_dir or default_model_dir())
    except ModelLoadError as exc:
        raise UserError(str(exc)) from None


def _detector_config(model, args):
    from dataclasses import replace
    cfg = model.detector
    for name in ("threshold", "smoothing_ms", "suppression_ms", "isolation_gate"):
        value = getattr(args, name, None)
        if value is not None:
            cfg = replace(cfg, **{name: value})
    return cfg


def print_event(event, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"time": event.time_s, "label": event.label, "score": round(event.score, 4)}), flush=True)
    else:
        print(f"{event.time_s:8.2f}s  {event.label:<6} {event.score:.3f}", flush=True)


def _add_detector_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threshold", type=float, help="smoothed probability needed to fire (model default)")
    parser.add_argument("--smoothing-ms", type=float, help="posterior averaging window (model default)")
    parser.add_argument("--suppression-ms", type=float, help="quiet time after a detection (model default)")
    parser.add_argument("--isolation-gate", type=float,
                        help="ignore commands coming out of running speech: the largest mean _unknown_ "
                             "probability allowed 1000-400 ms before one (0 = off; default: the model's "
                             "config.json, 0.5 for the shipped model)")
