"""`speechcmd install-desktop`: a launcher in the desktop's application menu, and if asked an autostart
entry that starts the app in the tray with the session (freedesktop.org Desktop Entry and Autostart
specifications; the folders follow XDG_DATA_HOME and XDG_CONFIG_HOME)."""
from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

APP_ID = "speechcmd"
ICON_SOURCE = Path(__file__).resolve().parent.parent / "assets" / "icon.svg"


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def _config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def desktop_paths() -> dict[str, Path]:
    return {"launcher": _data_home() / "applications" / f"{APP_ID}.desktop",
            "icon": _data_home() / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg",
            "autostart": _config_home() / "autostart" / f"{APP_ID}.desktop"}


def launch_command() -> list[str]:
    """How this installation is started: its `speechcmd` script, else this Python with the module.
    Paths are made absolute but not resolved: a virtual environment's python is a symlink to the base
    interpreter, which does not see the environment's packages."""
    candidates = [Path(sys.argv[0]) if sys.argv and sys.argv[0] else None,
                  Path(sys.executable).parent / APP_ID, shutil.which(APP_ID)]
    for script in candidates:
        if script and Path(script).name == APP_ID and Path(script).is_file() and os.access(script, os.X_OK):
            return [str(Path(script).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "desktop_app.cli"]


def _exec_line(args: list[str]) -> str:
    # The Exec key's quoting: arguments with reserved characters go in double quotes, with ", `, $ and \ escaped.
    def quote(arg: str) -> str:
        if arg and not any(c in arg for c in ' \t\n"\'\\><~|&;$*?#()`'):
            return arg
        return '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
    return " ".join(quote(a) for a in args)


def entry_text(command: list[str], icon: Path, autostart: bool) -> str:
    lines = ["[Desktop Entry]", "Type=Application", f"Name={APP_ID}",
             "GenericName=Speech commands",
             "Comment=Recognize spoken commands live and run your actions",
             f"Exec={_exec_line(command + ['gui'] + (['--tray'] if autostart else []))}",
             f"Icon={icon}", "Terminal=false", "Categories=Utility;Accessibility;",
             "Keywords=voice;speech;command;microphone;", "StartupNotify=false"]
    if autostart:
        lines.append("X-GNOME-Autostart-enabled=true")
    return "\n".join(lines) + "\n"


def install(autostart: bool) -> list[str]:
    """Write the icon, the launcher and (if asked) the autostart entry; the lines to print."""
    paths = desktop_paths()
    command = launch_command()
    paths["icon"].parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ICON_SOURCE, paths["icon"])
    done = [f"icon      {paths['icon']}"]
    paths["launcher"].parent.mkdir(parents=True, exist_ok=True)
    paths["launcher"].write_text(entry_text(command, paths["icon"], autostart=False))
    done.append(f"launcher  {paths['launcher']}  (runs: {shlex.join(command + ['gui'])})")
    if autostart:
        paths["autostart"].parent.mkdir(parents=True, exist_ok=True)
        paths["autostart"].write_text(entry_text(command, paths["icon"], autostart=True))
        done.append(f"autostart {paths['autostart']}  (starts in the tray when you log in)")
    return done


def uninstall() -> list[str]:
    removed = []
    for path in desktop_paths().values():
        if path.exists():
            path.unlink()
            removed.append(f"removed   {path}")
    return removed or ["nothing to remove: no launcher, icon or autostart entry was installed"]
