"""What every `speechcmd` subcommand shares: the user-error type, model loading, the detector
options and event printing. Both desktop_app/cli.py and desktop_app/live_cli.py import it, neither
imports the other's internals (no import circle). No torch, no Qt here.
"""
from __future__ import annotations

import argparse

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
        from desktop_app.actions import event_json   # the same line an action reads on its stdin
        print(event_json(event), flush=True)
    else:
        print(f"{event.time_s:8.2f}s  {event.label:<6} {event.score:.3f}", flush=True)


def _add_detector_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threshold", type=float, help="smoothed probability needed to fire (model default)")
    parser.add_argument("--smoothing-ms", type=float, help="posterior averaging window (model default)")
    parser.add_argument("--suppression-ms", type=float, help="quiet time after a detection (model default)")
    parser.add_argument("--isolation-gate", type=float,
                        help="ignore commands coming out of running speech: the largest mean _unknown_ "
                             "probability allowed 1000-400 ms before one (0 = off; default: the model's "
                             "config.json)")


ACTIONS_HELP = ("TOML file binding commands to programs or key presses (see README, \"Actions\"); "
                "default: {default}")


def _add_actions_options(parser: argparse.ArgumentParser, uses_default: bool) -> None:
    from desktop_app.actions import default_actions_path
    default = f"{default_actions_path()} when it exists" if uses_default else "none (actions fire only with this option)"
    parser.add_argument("--actions", metavar="FILE", help=ACTIONS_HELP.format(default=default))
    if uses_default:
        parser.add_argument("--no-actions", action="store_true", help="do not load any actions file")


def _load_action_set(args, labels, uses_default: bool):
    """The ActionSet the options ask for (None: no actions). Only the user's own file, never one from a
    model folder. A problem with the file is a UserError naming its line."""
    from desktop_app.actions import ActionsError, default_actions_path, load_actions
    path = getattr(args, "actions", None)
    if path is None:
        if not uses_default or getattr(args, "no_actions", False):
            return None
        path = default_actions_path()
        if not path.is_file():
            return None
    try:
        return load_actions(path, labels)
    except ActionsError as exc:
        raise UserError(str(exc)) from None


def _report_action_to_stderr(result) -> None:
    import sys
    prefix = "action: " if result.ok else "speechcmd: "
    print(prefix + result.message, file=sys.stderr, flush=True)


def _start_action_runner(args, labels, uses_default: bool):
    """An ActionRunner reporting to stderr, or None when there are no actions."""
    action_set = _load_action_set(args, labels, uses_default)
    if action_set is None:
        return None
    import sys
    from desktop_app.actions import ActionRunner
    print(f"actions: {len(action_set)} command(s) bound in {action_set.path}", file=sys.stderr, flush=True)
    return ActionRunner(action_set, _report_action_to_stderr)
