"""`speechcmd install-desktop`: the launcher, icon and autostart entry land where the desktop looks
(XDG folders), the launcher's command starts this installation, and --uninstall removes them."""
from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys

from conftest import REPO_ROOT


def _run(tmp_path, *args):
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    return subprocess.run([sys.executable, "-m", "desktop_app.cli", "install-desktop", *args], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def _entry(path):
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return parser["Desktop Entry"]


def test_install_writes_a_launcher_that_starts_this_installation(tmp_path):
    done = _run(tmp_path, "--autostart")
    assert done.returncode == 0, done.stderr
    launcher = tmp_path / "data" / "applications" / "speechcmd.desktop"
    autostart = tmp_path / "config" / "autostart" / "speechcmd.desktop"
    icon = tmp_path / "data" / "icons" / "hicolor" / "scalable" / "apps" / "speechcmd.svg"
    assert str(launcher) in done.stdout and str(autostart) in done.stdout
    entry, auto = _entry(launcher), _entry(autostart)
    assert entry["Type"] == "Application" and entry["Terminal"] == "false" and entry["Icon"] == str(icon)
    assert icon.read_bytes().startswith(b"<svg")
    command = shlex.split(entry["Exec"])
    assert command[-1] == "gui" and shlex.split(auto["Exec"]) == command + ["--tray"]
    # The command the desktop will run exists and is this app (its gui subcommand answers --help).
    shown = subprocess.run(command + ["--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "--tray" in shown.stdout, shown.stderr
    if shutil.which("desktop-file-validate"):
        for path in (launcher, autostart):
            checked = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True)
            assert checked.returncode == 0, checked.stdout + checked.stderr


def test_uninstall_removes_everything_it_wrote(tmp_path):
    assert _run(tmp_path, "--autostart").returncode == 0
    done = _run(tmp_path, "--uninstall")
    assert done.returncode == 0 and done.stdout.count("removed") == 3
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
    again = _run(tmp_path, "--uninstall")
    assert again.returncode == 0 and again.stdout.startswith("nothing to remove")
