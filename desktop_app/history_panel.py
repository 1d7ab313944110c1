"""The window's history of detections, each with the audio it fired on: play it, see it, and mark a
false alarm "Not a command" so that the next adaptation (Personalize) learns it is not one.

The kept clips are written to `<personal data>/not_commands/`; the Personalize dialog copies them into
its takes' `_not_commands_/` folder, which enrollment reads as other speech (model/takes.py).
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np
import pyqtgraph as pg
import soundfile as sf
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout

from audio.capture import CaptureError, play_samples
from audio.mel import NumpyLogMel
from desktop_app.widgets import log_mel_levels
from model.detector import Detection

NOT_A_COMMAND_MARK = "   (not a command)"


def not_commands_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "not_commands"


class HistoryPanel(QGroupBox):
    message = Signal(str, bool)    # text for the status bar, is_error

    def __init__(self, frontend, clip_of: Callable[[Detection], np.ndarray | None], data_dir: Path,
                 max_rows: int):
        super().__init__("History (clock, stream time, command, confidence): select one to hear it")
        self.frontend = frontend
        self.clip_of = clip_of
        self.data_dir = Path(data_dir)
        self.max_rows = max_rows
        self.list = QListWidget()
        self.list.setMinimumWidth(300)
        self.list.currentItemChanged.connect(self._show_selected)
        self.plot = pg.PlotWidget()
        self.plot.setMouseEnabled(False, False)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setFixedHeight(70)
        self.image = pg.ImageItem()
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.plot.addItem(self.image)
        self.play_button = QPushButton("Play")
        self.play_button.clicked.connect(self.play_selected)
        self.reject_button = QPushButton("Not a command")
        self.reject_button.setToolTip("Keep this sound as a false alarm: the next Personalize adaptation "
                                      "learns that it is not a command")
        self.reject_button.clicked.connect(self.reject_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(self.play_button)
        buttons.addWidget(self.reject_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.plot)
        layout.addLayout(buttons)
        self._show_selected()

    def add(self, event: Detection) -> None:
        clock = datetime.now().strftime("%H:%M:%S")
        item = QListWidgetItem(f"{clock}   {event.time_s:7.2f} s   {event.label:<6}  {event.score:.2f}")
        item.setData(Qt.ItemDataRole.UserRole, event)
        self.list.insertItem(0, item)
        while self.list.count() > self.max_rows:
            self.list.takeItem(self.list.count() - 1)

    def selected(self) -> tuple[Detection | None, np.ndarray | None]:
        item = self.list.currentItem()
        event = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        return event, (self.clip_of(event) if event is not None else None)

    @Slot()
    def _show_selected(self, *_args) -> None:
        event, clip = self.selected()
        item = self.list.currentItem()
        has_clip = clip is not None
        self.play_button.setEnabled(has_clip)
        self.reject_button.setEnabled(has_clip and not item.text().endswith(NOT_A_COMMAND_MARK))
        if not has_clip:
            self.image.clear()
            return
        frames = NumpyLogMel(self.frontend)(clip.astype(np.float32) / 32767.0)
        self.image.setImage(frames, levels=log_mel_levels(self.frontend), autoLevels=False)

    @Slot()
    def play_selected(self) -> bool:
        _, clip = self.selected()
        if clip is None:
            return False
        try:
            play_samples(clip.astype(np.float32) / 32767.0, self.frontend.sample_rate_hz)
        except CaptureError as exc:
            self.message.emit(str(exc), True)
            return False
        return True

    @Slot()
    def reject_selected(self) -> Path | None:
        """Keep the selected detection's audio as "not a command"; its path (None when there is none)."""
        event, clip = self.selected()
        if clip is None:
            return None
        folder = not_commands_dir(self.data_dir)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        path = folder / f"{stamp}_{event.label}.wav"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            sf.write(path, clip, self.frontend.sample_rate_hz, subtype="PCM_16")
        except (OSError, sf.LibsndfileError) as exc:
            self.message.emit(f"could not keep the clip: {exc}", True)
            return None
        item = self.list.currentItem()
        item.setText(item.text() + NOT_A_COMMAND_MARK)
        self._show_selected()
        n = len(list(folder.glob("*.wav")))
        self.message.emit(f"kept as not a command ({n} so far): the next Personalize adaptation learns from it",
                          False)
        return path
