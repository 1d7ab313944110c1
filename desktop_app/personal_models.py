"""Where personal models live (light: the tray lists them without importing the Personalize dialog)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths


def personal_data_dir() -> Path:
    """Qt's AppDataLocation (~/.local/share/speechcmd/speechcmd on Linux)."""
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(location or Path.home() / ".local" / "share" / "speechcmd")


def personal_models_dir() -> Path:
    return personal_data_dir() / "models"


def list_personal_models(folder: Path) -> list[Path]:
    """Model folders (with a config.json) in `folder`, newest first; half-written ones are skipped."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and (p / "config.json").is_file()
             and not p.name.endswith(".partial")]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
