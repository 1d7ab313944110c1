"""Actions: what a recognized command does (run a program, press a key), bound in the user's own TOML file.

    [actions.stop]
    run = ["playerctl", "pause"]      # a program and its arguments, never a shell
    [actions.up]
    keys = "Page_Up"                  # a key press to the focused window (xdotool / wtype)
    min_score = 0.8                   # optional
    cooldown_ms = 1000                # optional
    timeout_ms = 5000                 # optional: the action is killed after this long

Data flow: `load_actions(path, labels)` parses strictly (an unknown key, a command the model does not
have, a wrong type or a missing key-press tool is one ActionsError line with the file's line number)
into an ActionSet; an ActionRunner takes each detection event with `handle(event)`, which only checks
the score/cooldown and hands the action to a small thread pool, so neither the audio worker nor the GUI
thread ever waits on a program. Each program runs without a shell: placeholders ({label}, {score},
{time}) are substituted as text inside single arguments, the event's JSON line (as `detect --json`
prints it) is written to its stdin, and it is killed (its whole process group) at its timeout.

Actions come only from a file the user names or from their config folder, never from a model folder,
and a file other users may write to is refused (anyone who can edit it could run programs as you).
No Qt and no torch here.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

ACTIONS_FILE_NAME = "actions.toml"
ACTION_KEYS = ("run", "keys", "min_score", "cooldown_ms", "timeout_ms")
DEFAULT_TIMEOUT_MS = 5000.0
MAX_TIMEOUT_MS = 600_000.0
# Programs running at once; a command whose previous action still runs is skipped (reported), so a
# hanging program holds one worker at most until its timeout.
MAX_RUNNING_ACTIONS = 4
PLACEHOLDERS = ("label", "score", "time")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_CHORD = re.compile(r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$")
_WTYPE_MODIFIERS = {"ctrl": "ctrl", "control": "ctrl", "shift": "shift", "alt": "alt", "super": "logo",
                    "logo": "logo", "win": "logo", "meta": "logo", "altgr": "altgr"}
STDERR_TAIL_CHARS = 200


class ActionsError(Exception):
    """A problem with the actions file, as one line naming the file and line."""


def default_actions_path(env: dict | None = None) -> Path:
    """`actions.toml` in the user's config folder (XDG_CONFIG_HOME on Linux, the usual places elsewhere)."""
    env = os.environ if env is None else env
    if sys.platform == "win32":
        base = Path(env.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "speechcmd" / ACTIONS_FILE_NAME


@dataclass(frozen=True)
class KeyTool:
    """The program that presses keys: xdotool on X11, wtype on Wayland (both take X keysym names)."""
    name: str
    path: str

    def command(self, keys: str) -> list[str]:
        chords = keys.split()
        if self.name == "xdotool":
            return [self.path, "key", "--clearmodifiers", *chords]
        argv = [self.path]
        for chord in chords:   # wtype: modifiers held with -M, the key with -k, released with -m
            *mods, key = chord.split("+")
            mods = [_WTYPE_MODIFIERS[m.lower()] for m in mods]
            argv += [x for m in mods for x in ("-M", m)] + ["-k", key] + [x for m in reversed(mods) for x in ("-m", m)]
        return argv


def find_key_tool(env: dict | None = None) -> KeyTool:
    """The key-press tool for this desktop session; ActionsError (without a line) when there is none."""
    env = os.environ if env is None else env
    if env.get("WAYLAND_DISPLAY"):
        path = shutil.which("wtype", path=env.get("PATH"))
        if path:
            return KeyTool("wtype", path)
        if not env.get("DISPLAY"):
            raise ActionsError("keys needs wtype on Wayland (apt install wtype)")
    if env.get("DISPLAY"):
        path = shutil.which("xdotool", path=env.get("PATH"))
        if path:
            return KeyTool("xdotool", path)
        raise ActionsError("keys needs xdotool on X11 (apt install xdotool)")
    raise ActionsError("keys needs a desktop session (neither DISPLAY nor WAYLAND_DISPLAY is set)")


@dataclass(frozen=True)
class Action:
    label: str
    run: tuple[str, ...] | None = None     # program and arguments, placeholders not yet substituted
    keys: str | None = None                # space-separated chords such as "ctrl+shift+Page_Up"
    min_score: float = 0.0
    cooldown_ms: float = 0.0
    timeout_ms: float = DEFAULT_TIMEOUT_MS
    line: int = 0                          # where it is defined in the file (0: not from a file)

    def describe(self) -> str:
        if self.run is not None:
            import shlex
            return shlex.join(self.run)
        return f"keys {self.keys}"


@dataclass(frozen=True)
class ActionSet:
    actions: dict[str, Action] = field(default_factory=dict)
    path: Path | None = None
    key_tool: KeyTool | None = None

    def __len__(self) -> int:
        return len(self.actions)


def substitute(argument: str, values: dict[str, str]) -> str:
    """`{label}` etc. replaced as plain text ({{ and }} are literal braces); the result stays one argument."""
    def one(match: re.Match) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        return values[match.group(1)]
    return _PLACEHOLDER.sub(one, argument)


def _check_placeholders(argument: str) -> str | None:
    """What is wrong with the placeholders of one argument, or None."""
    for match in _PLACEHOLDER.finditer(argument):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if token in ("{", "}"):
            return f"unmatched {token!r} in {argument!r} (write {token * 2} for a literal brace)"
        if match.group(1) not in PLACEHOLDERS:
            return f"unknown placeholder {token} in {argument!r} (known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
    return None


def event_values(event) -> dict[str, str]:
    return {"label": event.label, "score": f"{event.score:.3f}", "time": f"{event.time_s:.3f}"}


def event_json(event) -> str:
    """The event as one JSON line: what `detect --json` / `listen --json` print and an action reads."""
    return json.dumps({"time": event.time_s, "label": event.label, "score": round(event.score, 4)})


# ---------------------------------------------------------------------------------------------- parsing
def load_actions(path: str | Path, labels: Iterable[str], env: dict | None = None) -> ActionSet:
    """Read and check an actions file. ActionsError (one line, with the line number) on any problem."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())   # the file that is read, not whatever the name points to later
            raw = handle.read()
    except FileNotFoundError:
        raise ActionsError(f"{path}: actions file not found") from None
    except OSError as exc:
        raise ActionsError(f"{path}: cannot read the actions file: {exc.strerror or exc}") from None
    if os.name == "posix":
        # Anyone who can change this file can run programs as you: like ssh with its config, refuse it.
        if info.st_mode & 0o022:
            raise ActionsError(f"{path}: other users can write to this actions file, and it runs programs as you; "
                               f"refusing it (chmod go-w {path})")
        if info.st_uid != os.getuid():
            raise ActionsError(f"{path}: this actions file belongs to another user; refusing it (it would run "
                               "programs as you)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ActionsError(f"{path}: not UTF-8 text") from None
    return parse_actions(text, labels, str(path), env=env, path=path)


def parse_actions(text: str, labels: Iterable[str], source: str = "actions", env: dict | None = None,
                  path: Path | None = None) -> ActionSet:
    from model.labels import command_labels
    commands = command_labels(list(labels))
    lines = text.splitlines()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ActionsError(f"{source}: not valid TOML: {exc}") from None

    def fail(line: int, message: str):
        raise ActionsError(f"{source}:{line}: {message}")

    for key in data:
        if key != "actions":
            fail(_line_of(lines, key), f"unknown top-level key {key!r} (only [actions.<command>] tables belong here)")
    table = data.get("actions", {})
    if not isinstance(table, dict):
        fail(_line_of(lines, "actions"), "`actions` must be a table: [actions.<command>]")
    actions: dict[str, Action] = {}
    needs_keys: Action | None = None
    for label, body in table.items():
        line = _line_of(lines, label, section=True)
        if label not in commands:
            fail(line, f"the model has no command {label!r} (its commands: {', '.join(commands)})")
        if not isinstance(body, dict):
            fail(line, f"actions.{label} must be a table with run = [...] or keys = \"...\"")
        for key in body:
            if key not in ACTION_KEYS:
                fail(_line_of(lines, key, after=line), f"unknown key {key!r} in [actions.{label}] "
                                                        f"(known: {', '.join(ACTION_KEYS)})")
        has_run, has_keys = "run" in body, "keys" in body
        if has_run == has_keys:
            fail(line, f"[actions.{label}] needs exactly one of run = [...] and keys = \"...\"")
        action = Action(label, line=line)
        if has_run:
            run = body["run"]
            where = _line_of(lines, "run", after=line)
            if not isinstance(run, list) or not run or not all(isinstance(a, str) for a in run):
                fail(where, "run must be a non-empty list of strings: a program and its arguments "
                            '(e.g. run = ["playerctl", "pause"]; no shell is used)')
            if not run[0].strip():
                fail(where, "run: the program name is empty")
            for argument in run:
                problem = _check_placeholders(argument)
                if problem:
                    fail(where, f"run: {problem}")
            action = replace(action, run=tuple(run))
        else:
            keys = body["keys"]
            where = _line_of(lines, "keys", after=line)
            if not isinstance(keys, str) or not keys.split():
                fail(where, 'keys must be a string of key names, e.g. keys = "Page_Up" or "ctrl+shift+t"')
            for chord in keys.split():
                if not _CHORD.match(chord):
                    fail(where, f"keys: {chord!r} is not a key name or modifier+key chord (e.g. ctrl+c)")
                for modifier in chord.split("+")[:-1]:
                    if modifier.lower() not in _WTYPE_MODIFIERS:
                        fail(where, f"keys: unknown modifier {modifier!r} in {chord!r} "
                                    f"(known: ctrl, shift, alt, super)")
            action = replace(action, keys=" ".join(keys.split()))
            needs_keys = needs_keys or action
        for key, low, high in (("min_score", 0.0, 1.0), ("cooldown_ms", 0.0, 86_400_000.0),
                               ("timeout_ms", 1.0, MAX_TIMEOUT_MS)):
            if key in body:
                value = body[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                    fail(_line_of(lines, key, after=line), f"{key} must be a number from {low:g} to {high:g}")
                action = replace(action, **{key: float(value)})
        actions[label] = action
    key_tool = None
    if needs_keys is not None:
        try:
            key_tool = find_key_tool(env)
        except ActionsError as exc:
            fail(needs_keys.line, f"[actions.{needs_keys.label}] {exc}")
    return ActionSet(actions, path, key_tool)


def _line_of(lines: list[str], name: str, section: bool = False, after: int = 0) -> int:
    """1-based line where `name` is defined: a top-level key or table, a [actions.<name>] table
    (section), or a `name =` key inside the table that starts at line `after`. tomllib reports no
    positions for valid TOML, so they are found in the text."""
    quoted = rf"(?:{re.escape(name)}|\"{re.escape(name)}\"|'{re.escape(name)}')"
    if section:
        patterns = [rf"^\s*\[\s*actions\s*\.\s*{quoted}\s*\]", rf"^\s*(actions\s*\.\s*)?{quoted}\s*[.=]"]
    elif not after:
        patterns = [rf"^\s*\[+\s*{quoted}\s*[.\]]", rf"^\s*{quoted}\s*[.=]"]
    else:
        key = re.compile(rf"(^\s*|[{{,]\s*){quoted}\s*=")
        for number in range(after, len(lines) + 1):
            line = lines[number - 1]
            if number > after and line.lstrip().startswith("["):
                break
            if key.search(line):
                return number
        return after
    for pattern in patterns:
        for number, line in enumerate(lines, 1):
            if re.match(pattern, line):
                return number
    return 1


def dump_actions(actions: Iterable[Action]) -> str:
    """TOML text for these actions (what the window's editor saves); parse_actions reads it back."""
    out = ["# speechcmd actions: one [actions.<command>] table per command (see README, \"Actions\").", ""]
    for action in actions:
        out.append(f"[actions.{_toml_key(action.label)}]")
        if action.run is not None:
            out.append("run = [" + ", ".join(_toml_string(a) for a in action.run) + "]")
        else:
            out.append(f"keys = {_toml_string(action.keys or '')}")
        if action.min_score:
            out.append(f"min_score = {action.min_score:g}")
        if action.cooldown_ms:
            out.append(f"cooldown_ms = {action.cooldown_ms:g}")
        if action.timeout_ms != DEFAULT_TIMEOUT_MS:
            out.append(f"timeout_ms = {action.timeout_ms:g}")
        out.append("")
    return "\n".join(out)


def _toml_string(value: str) -> str:
    # JSON's escapes (\" \\ \n \uXXXX) are all valid in a TOML basic string.
    return json.dumps(value, ensure_ascii=False)


def _toml_key(value: str) -> str:
    return value if re.fullmatch(r"[A-Za-z0-9_-]+", value) else _toml_string(value)


def save_actions(path: str | Path, actions: Iterable[Action], labels: Iterable[str],
                 env: dict | None = None) -> ActionSet:
    """Write the file atomically (owner-only) after checking it with the same strict parser that
    loads it: nothing is written when an action is wrong."""
    path = Path(path)
    text = dump_actions(actions)
    checked = parse_actions(text, labels, str(path), env=env, path=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.chmod(partial, 0o600)
    os.replace(partial, path)
    return checked


# ---------------------------------------------------------------------------------------------- running
@dataclass(frozen=True)
class ActionResult:
    label: str
    action: str             # what ran, in words
    ok: bool
    message: str            # one line for the user
    spawn_ms: float | None  # from handle() to the program started (None when it did not start)


class ActionRunner:
    """Runs the actions of detection events off the caller's thread; thread-safe.

    `report` is called (on a pool thread) with an ActionResult for every action that ran, failed,
    timed out or was skipped because its previous run had not ended."""

    def __init__(self, action_set: ActionSet, report: Callable[[ActionResult], None] | None = None,
                 max_running: int = MAX_RUNNING_ACTIONS):
        self.action_set = action_set
        self.report = report or (lambda result: None)
        self.enabled = True
        self._pool = ThreadPoolExecutor(max_workers=max_running, thread_name_prefix="action")
        self._lock = threading.Condition()   # also signals the end of a run (in_order waits for it)
        self._running: set[str] = set()
        self._processes: set[subprocess.Popen] = set()
        self._last_fired_s: dict[str, float] = {}
        self._closed = False

    def set_actions(self, action_set: ActionSet) -> None:
        self.action_set = action_set

    def handle(self, event, in_order: bool = False) -> bool:
        """An event from the detector: start its action if one is bound and due. Returns at once; with
        `in_order` (a recording read faster than real time) it first waits for the same action's
        previous run to end instead of skipping it."""
        if not self.enabled or self._closed:
            return False
        action = self.action_set.actions.get(event.label)
        if action is None or event.score < action.min_score:
            return False
        with self._lock:
            last = self._last_fired_s.get(action.label)
            if last is not None and 0 <= event.time_s - last < action.cooldown_ms / 1000.0:
                return False
        if not self._submit(action, event, wait=in_order):
            return False
        with self._lock:
            self._last_fired_s[action.label] = event.time_s
        return True

    def try_action(self, action: Action, key_tool: KeyTool | None = None) -> bool:
        """Run `action` now as if its command had been heard (the window's "Try" button), even while
        actions are switched off; `key_tool` for a keys action not yet saved."""
        from model.detector import Detection
        return self._submit(action, Detection(0.0, action.label, 1.0), key_tool)

    def _submit(self, action: Action, event, key_tool: KeyTool | None = None, wait: bool = False) -> bool:
        with self._lock:
            while wait and action.label in self._running and not self._closed:
                self._lock.wait()
            if action.label in self._running:
                self.report(ActionResult(action.label, action.describe(), False,
                                         f"action for {action.label!r} skipped: its previous run has not ended",
                                         None))
                return False
            self._running.add(action.label)
        handed_at = time.monotonic()
        try:
            self._pool.submit(self._run, action, event, handed_at, key_tool or self.action_set.key_tool)
        except RuntimeError:   # the pool was shut down meanwhile
            with self._lock:
                self._running.discard(action.label)
            return False
        return True

    def _run(self, action: Action, event, handed_at: float, key_tool: KeyTool | None) -> None:
        what = action.describe()
        try:
            result = self._execute(action, event, handed_at, what, key_tool)
        except Exception as exc:   # a pool thread must report, never die silently
            result = ActionResult(action.label, what, False, f"action for {action.label!r} failed: {exc}", None)
        finally:
            with self._lock:
                self._running.discard(action.label)
                self._lock.notify_all()
        self.report(result)

    def _execute(self, action: Action, event, handed_at: float, what: str, key_tool: KeyTool | None) -> ActionResult:
        if action.run is not None:
            values = event_values(event)
            argv = [substitute(argument, values) for argument in action.run]
        elif key_tool is not None:
            argv = key_tool.command(action.keys)
        else:
            return ActionResult(action.label, what, False, f"action for {action.label!r}: no key-press tool", None)
        posix = os.name == "posix"
        # stderr goes to a file, not a pipe: a program that starts another one (xdg-open, a terminal)
        # would hand it the pipe, and waiting for the pipe to close would wait for that program too.
        with tempfile.TemporaryFile() as stderr_file:
            try:
                process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                           stderr=stderr_file, close_fds=True, start_new_session=posix)
            except OSError as exc:
                reason = "program not found" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc))
                return ActionResult(action.label, what, False, f"action for {action.label!r} could not start "
                                                               f"{argv[0]!r}: {reason}", None)
            spawn_ms = (time.monotonic() - handed_at) * 1000.0
            with self._lock:
                self._processes.add(process)
            try:
                try:   # the event as one JSON line on stdin; a program that does not read it loses nothing
                    process.stdin.write((event_json(event) + "\n").encode())
                    process.stdin.close()
                except OSError:
                    pass
                timeout_s = action.timeout_ms / 1000.0
                try:
                    process.wait(timeout_s)   # the program itself; what it started in the background may stay
                except subprocess.TimeoutExpired:
                    _kill(process, posix)
                    return ActionResult(action.label, what, False, f"action for {action.label!r} ({what}) did not "
                                                                   f"end within {timeout_s:g} s and was killed", spawn_ms)
            finally:
                with self._lock:
                    self._processes.discard(process)
            if process.returncode != 0:
                if process.returncode < 0 and self._closed:
                    return ActionResult(action.label, what, False, f"action for {action.label!r} stopped at exit",
                                        spawn_ms)
                stderr_file.seek(0)
                tail = stderr_file.read()[-4096:].decode("utf-8", "replace").strip().splitlines()
                detail = f": {tail[-1][:STDERR_TAIL_CHARS]}" if tail else ""
                return ActionResult(action.label, what, False, f"action for {action.label!r} ({what}) failed "
                                                               f"with exit status {process.returncode}{detail}", spawn_ms)
        return ActionResult(action.label, what, True, f"{action.label} -> {what}", spawn_ms)

    def close(self, wait: bool = True) -> None:
        """No new actions. With `wait`, the running ones may end (each is bounded by its timeout);
        without, they are killed now, so that quitting never waits for a program."""
        self._closed = True
        if not wait:
            with self._lock:
                running = list(self._processes)
            for process in running:
                _kill(process, os.name == "posix")
        self._pool.shutdown(wait=wait, cancel_futures=not wait)


def _kill(process: subprocess.Popen, posix: bool) -> None:
    """Kill the program and everything it started (its own process group)."""
    try:
        if posix:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(2.0)
    except subprocess.TimeoutExpired:
        pass
    if process.stdin is not None:
        try:
            process.stdin.close()
        except OSError:
            pass
