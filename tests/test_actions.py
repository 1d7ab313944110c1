"""Actions: the strict TOML file, programs run without a shell, timeouts, and `detect --actions`."""
from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, focused_text_field, run_cli
from desktop_app.actions import (Action, ActionRunner, ActionsError, event_json, load_actions, parse_actions,
                                 save_actions)
from model.detector import Detection

LABELS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_"]
DEMO = REPO_ROOT / "assets" / "demo" / "demo_stream.wav"
# A tiny program that appends its arguments (as one JSON line) and its stdin to a file.
RECORDER = ("import json, sys; open(sys.argv[1], 'a').write(json.dumps({'argv': sys.argv[2:], "
            "'stdin': sys.stdin.read()}) + '\\n')")
RECORDER_ARG = RECORDER.replace("{", "{{").replace("}", "}}")   # braces are literal in an action's arguments


def _toml_list(items) -> str:
    return "[" + ", ".join(json.dumps(str(item)) for item in items) + "]"


def _recorder_action(label: str, out: Path, *arguments: str, extra: str = "") -> str:
    return f"[actions.{label}]\nrun = {_toml_list([sys.executable, '-c', RECORDER_ARG, out, *arguments])}\n{extra}"


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class Reports:
    def __init__(self):
        self.results = []
        self.arrived = threading.Condition()

    def __call__(self, result):
        with self.arrived:
            self.results.append(result)
            self.arrived.notify_all()

    def wait_for(self, n: int, timeout_s: float = 15.0):
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.results) >= n, timeout_s), self.results
        return self.results


@pytest.mark.parametrize("text, line, message", [
    ('[actions.stop]\nrun = "playerctl pause"\n', 2, "run must be a non-empty list of strings"),
    ('# mine\n[actions.stop]\nrun = ["ls"]\ncolour = "red"\n', 4, "unknown key 'colour'"),
    ('[actions.stop]\nrun = ["ls"]\n\n[actions.lights]\nrun = ["ls"]\n', 4, "the model has no command 'lights'"),
    ('[actions._unknown_]\nrun = ["ls"]\n', 1, "the model has no command '_unknown_'"),
    ('[actions.stop]\nrun = ["echo", "{who}"]\n', 2, "unknown placeholder {who}"),
    ('[actions.stop]\nrun = ["echo", "{label"]\n', 2, "unmatched '{'"),
    ('[actions.stop]\nrun = ["ls"]\nmin_score = "high"\n', 3, "min_score must be a number"),
    ('[actions.stop]\nrun = ["ls"]\ntimeout_ms = 0\n', 3, "timeout_ms must be a number"),
    ('[actions.stop]\nrun = ["ls"]\nkeys = "a"\n', 1, "needs exactly one of run"),
    ('[actions.stop]\nkeys = "ctrl+"\n', 2, "not a key name"),
    ('[actions.stop]\nkeys = "hyper+a"\n', 2, "unknown modifier 'hyper'"),
    ('[settings]\nenabled = true\n', 1, "unknown top-level key 'settings'"),
    ('[actions]\nstop = { run = ["ls"], bogus = 1 }\n', 2, "unknown key 'bogus'"),
])
def test_a_bad_actions_file_is_one_line_naming_the_line(text, line, message):
    with pytest.raises(ActionsError) as caught:
        parse_actions(text, LABELS, "actions.toml", env={"DISPLAY": ":9", "PATH": os.defpath})
    text_of_error = str(caught.value)
    assert text_of_error.startswith(f"actions.toml:{line}: "), text_of_error
    assert message in text_of_error and "\n" not in text_of_error


def test_invalid_toml_names_its_line():
    with pytest.raises(ActionsError, match=r"not valid TOML: .*line 3"):
        parse_actions('[actions.stop]\nrun = ["ls"]\nmin_score = \n', LABELS, "actions.toml")


def test_keys_without_a_key_tool_fail_when_the_file_is_loaded():
    text = '[actions.stop]\nrun = ["ls"]\n\n[actions.up]\nkeys = "Page_Up"\n'
    with pytest.raises(ActionsError, match=r"^actions.toml:4: \[actions.up\] keys needs a desktop session"):
        parse_actions(text, LABELS, "actions.toml", env={"PATH": os.defpath})
    with pytest.raises(ActionsError, match=r"^actions.toml:4: .*needs xdotool"):
        parse_actions(text, LABELS, "actions.toml", env={"DISPLAY": ":9", "PATH": "/nonexistent"})


def test_placeholders_with_spaces_quotes_and_semicolons_stay_one_argument(tmp_path):
    out, pwned = tmp_path / "out.jsonl", tmp_path / "pwned"
    label = f'it\'s "a"; touch {pwned} && echo $(id)'
    labels = [label, "_unknown_", "_silence_"]
    text = f'[actions."{label.replace(chr(34), chr(92) + chr(34))}"]\n' \
           f'run = {_toml_list([sys.executable, "-c", RECORDER_ARG, out, "said {label} at {time}", "{score}", "{{x}}"])}\n'
    action_set = parse_actions(text, labels, "actions.toml")
    reports = Reports()
    runner = ActionRunner(action_set, reports)
    event = Detection(1.25, label, 0.8766)
    assert runner.handle(event)
    result = reports.wait_for(1)[0]
    runner.close()
    assert result.ok, result.message
    record = _records(out)[0]
    assert record["argv"] == [f"said {label} at 1.250", "0.877", "{x}"]
    assert not pwned.exists()
    assert record["stdin"] == event_json(event) + "\n"   # the JSON line `detect --json` prints


def test_a_hanging_action_is_killed_with_its_children_and_does_not_hold_up_others(tmp_path):
    child_pid = tmp_path / "child.pid"
    out = tmp_path / "go.jsonl"
    hang = ("import subprocess, sys, time; p = subprocess.Popen(['sleep', '60']); "
            "open(sys.argv[1], 'w').write(str(p.pid)); time.sleep(60)")
    text = (f"[actions.stop]\nrun = {_toml_list([sys.executable, '-c', hang, child_pid])}\ntimeout_ms = 1500\n\n"
            + _recorder_action("go", out))
    reports = Reports()
    runner = ActionRunner(parse_actions(text, LABELS, "actions.toml"), reports)
    started = time.monotonic()
    assert runner.handle(Detection(0.0, "stop", 0.9))
    time.sleep(0.3)
    assert runner.handle(Detection(0.5, "go", 0.9))
    first = reports.wait_for(1)[0]
    assert first.label == "go" and first.ok                 # did not wait for the hanging one
    assert time.monotonic() - started < 1.4
    assert not runner.handle(Detection(1.0, "stop", 0.9))   # its previous run still hangs: skipped
    results = reports.wait_for(3)
    killed = [r for r in results if r.label == "stop" and "killed" in r.message]
    assert len(killed) == 1 and "within 1.5 s" in killed[0].message
    assert any("skipped" in r.message for r in results)
    assert time.monotonic() - started < 5
    runner.close()
    pid = int(child_pid.read_text())
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid), "the action's own child was left running"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_a_failing_or_missing_program_is_reported(tmp_path):
    fail = [sys.executable, "-c", "import sys; sys.exit('disk full')"]
    text = f"[actions.stop]\nrun = {_toml_list(fail)}\n" + '[actions.go]\nrun = ["/nonexistent/program"]\n'
    reports = Reports()
    runner = ActionRunner(parse_actions(text, LABELS, "actions.toml"), reports)
    runner.handle(Detection(0.0, "stop", 0.9))
    runner.handle(Detection(0.0, "go", 0.9))
    results = {r.label: r for r in reports.wait_for(2)}
    runner.close()
    assert not results["stop"].ok and "exit status 1: disk full" in results["stop"].message
    assert not results["go"].ok and "program not found" in results["go"].message


def test_min_score_cooldown_and_the_off_switch(tmp_path):
    out = tmp_path / "out.jsonl"
    text = _recorder_action("stop", out, "{time}", extra="min_score = 0.7\ncooldown_ms = 1000\n")
    reports = Reports()
    runner = ActionRunner(parse_actions(text, LABELS, "actions.toml"), reports)
    fired = []
    for t, score in ((0.0, 0.9), (0.5, 0.9), (1.2, 0.65), (1.3, 0.9), (2.0, 0.9)):
        fired.append(runner.handle(Detection(t, "stop", score)))
        if fired[-1]:
            reports.wait_for(len(reports.results) + 1)   # ran to the end: not skipped as still running
    runner.enabled = False
    assert not runner.handle(Detection(5.0, "stop", 0.99))
    assert not runner.handle(Detection(5.0, "yes", 0.99))   # nothing bound
    runner.close()
    assert fired == [True, False, False, True, False]
    assert [r["argv"] for r in _records(out)] == [["0.000"], ["1.300"]]


def test_save_writes_what_load_reads_back(tmp_path):
    path = tmp_path / "config" / "actions.toml"
    actions = [Action("stop", run=("notify-send", 'He said "stop" \\ now', "ünï", "{label}"), min_score=0.75,
                      cooldown_ms=1500, timeout_ms=2000),
               Action("up", keys="ctrl+Page_Up")]
    with pytest.raises(ActionsError, match="keys needs"):   # no key tool: refused before anything is written
        save_actions(path, actions, LABELS, env={"PATH": os.defpath})
    assert not path.exists()
    save_actions(path, actions, LABELS, env={"DISPLAY": ":9", "PATH": os.path.dirname(sys.executable)
                                             + os.pathsep + _fake_xdotool_dir(tmp_path)})
    loaded = load_actions(path, LABELS, env={"DISPLAY": ":9", "PATH": _fake_xdotool_dir(tmp_path)})
    assert [(a.label, a.run, a.keys, a.min_score, a.cooldown_ms, a.timeout_ms) for a in loaded.actions.values()] == \
        [(a.label, a.run, a.keys, a.min_score, a.cooldown_ms, a.timeout_ms) for a in actions]
    assert loaded.key_tool.name == "xdotool"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def _fake_xdotool_dir(tmp_path: Path) -> str:
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    tool = folder / "xdotool"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    return str(folder)


def test_a_file_other_users_can_write_is_refused(tmp_path):
    path = tmp_path / "actions.toml"
    path.write_text('[actions.stop]\nrun = ["true"]\n')
    path.chmod(0o666)
    with pytest.raises(ActionsError, match="other users can write"):
        load_actions(path, LABELS)
    path.chmod(0o644)
    assert list(load_actions(path, LABELS).actions) == ["stop"]


def test_detect_fires_actions_as_events_are_found_and_a_failing_one_stops_nothing(tmp_path):
    out = tmp_path / "out.jsonl"
    plain = run_cli("detect", str(DEMO), "--json")
    assert plain.returncode == 0, plain.stderr
    events = [json.loads(line) for line in plain.stdout.splitlines()]
    assert len(events) >= 3
    labels = sorted({e["label"] for e in events})
    failing = labels[0]
    actions = tmp_path / "actions.toml"
    actions.write_text("".join(_recorder_action(label, out, "{label}", "{time}") for label in labels[1:])
                       + f"[actions.{failing}]\nrun = [\"/nonexistent/program\"]\n")
    done = run_cli("detect", str(DEMO), "--json", "--actions", str(actions))
    assert done.returncode == 0, done.stderr
    assert done.stdout == plain.stdout            # the same events, in order, none lost to the failing action
    fired = [r["argv"] for r in _records(out)]
    expected = [[e["label"], f"{e['time']:.3f}"] for e in events if e["label"] != failing]
    assert sorted(fired, key=lambda a: float(a[1])) == expected
    assert f"action for {failing!r} could not start" in done.stderr
    assert "Traceback" not in done.stderr


def test_actions_come_only_from_the_users_file_never_from_the_model_folder(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(REPO_ROOT / "assets" / "model", model)
    out = tmp_path / "out.jsonl"
    (model / "actions.toml").write_text("".join(_recorder_action(label, out) for label in LABELS[:10]))
    done = run_cli("detect", str(DEMO), "--model", str(model))
    assert done.returncode == 0 and done.stdout.strip(), done.stderr
    assert not out.exists()


def test_a_bad_actions_file_stops_detect_before_it_starts(tmp_path):
    actions = tmp_path / "actions.toml"
    actions.write_text('[actions.stop]\nrun = ["true"]\nwhen = "now"\n')
    done = run_cli("detect", str(DEMO), "--actions", str(actions))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == f"speechcmd: {actions}:3: unknown key 'when' in [actions.stop] " \
                                  "(known: run, keys, min_score, cooldown_ms, timeout_ms)"


def test_keys_press_keys_in_the_focused_window(x_display, tmp_path):
    """A real Qt text field on a real X server receives the keys an action presses."""
    window, typed = focused_text_field(x_display, tmp_path)
    try:
        action_set = parse_actions('[actions.up]\nkeys = "h i shift+1"\n', LABELS, "actions.toml", env=x_display)
        assert action_set.key_tool.name == "xdotool"
        reports = Reports()
        runner = ActionRunner(action_set, reports)
        old_display = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = x_display["DISPLAY"]   # xdotool, started by the runner, finds the server
        try:
            assert runner.handle(Detection(0.0, "up", 0.9))
            result = reports.wait_for(1)[0]
        finally:
            os.environ.pop("DISPLAY") if old_display is None else os.environ.update(DISPLAY=old_display)
        runner.close()
        assert result.ok, result.message
        deadline = time.monotonic() + 5
        while (not typed.exists() or typed.read_text() != "hi!") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert typed.read_text() == "hi!"
    finally:
        window.kill()


def test_a_program_that_starts_another_one_and_exits_is_not_killed_with_it(tmp_path):
    """xdg-open, a terminal, a browser: the action ends, what it started keeps running."""
    pid_file = tmp_path / "bg.pid"
    launcher = ("import subprocess, sys; p = subprocess.Popen(['sleep', '30']); "
                "open(sys.argv[1], 'w').write(str(p.pid))")
    text = f"[actions.stop]\nrun = {_toml_list([sys.executable, '-c', launcher, pid_file])}\ntimeout_ms = 2000\n"
    reports = Reports()
    runner = ActionRunner(parse_actions(text, LABELS, "actions.toml"), reports)
    started = time.monotonic()
    runner.handle(Detection(0.0, "stop", 0.9))
    result = reports.wait_for(1)[0]
    runner.close()
    assert result.ok, result.message
    assert time.monotonic() - started < 1.8          # not held until the timeout
    pid = int(pid_file.read_text())
    try:
        assert _alive(pid)
    finally:
        os.kill(pid, 9)


def test_closing_without_waiting_kills_running_actions_at_once(tmp_path):
    text = '[actions.stop]\nrun = ["sleep", "30"]\ntimeout_ms = 60000\n'
    reports = Reports()
    runner = ActionRunner(parse_actions(text, LABELS, "actions.toml"), reports)
    runner.handle(Detection(0.0, "stop", 0.9))
    time.sleep(0.3)
    started = time.monotonic()
    runner.close(wait=False)
    result = reports.wait_for(1, timeout_s=5)[0]
    assert time.monotonic() - started < 3 and "stopped at exit" in result.message


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to give the file away")
def test_a_file_owned_by_another_user_is_refused(tmp_path):
    path = tmp_path / "actions.toml"
    path.write_text('[actions.stop]\nrun = ["true"]\n')
    os.chown(path, 65534, 65534)
    with pytest.raises(ActionsError, match="belongs to another user"):
        load_actions(path, LABELS)


def test_a_recording_read_faster_than_real_time_runs_every_action_in_order(tmp_path):
    out = tmp_path / "out.jsonl"
    slow = "import time; time.sleep(0.3); " + RECORDER_ARG
    actions = parse_actions(f"[actions.stop]\nrun = {_toml_list([sys.executable, '-c', slow, out, '{time}'])}\n",
                            LABELS)
    events = [Detection(t, "stop", 0.9) for t in (1.0, 5.0, 9.0)]
    live = ActionRunner(actions)
    fired_live = [live.handle(e) for e in events]      # live: a run still going skips the next one
    live.close(wait=True)
    assert fired_live == [True, False, False]
    out.unlink()
    in_file = ActionRunner(actions)
    assert all(in_file.handle(e, in_order=True) for e in events)
    in_file.close(wait=True)
    assert [r["argv"] for r in _records(out)] == [["1.000"], ["5.000"], ["9.000"]]
