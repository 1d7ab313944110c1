"""The plots of the main window. Each keeps its plot items and only updates their data when redrawn
(`setImage` / `setOpts` / `setData` on persistent items, never re-creating them: that is what keeps
a 20 Hz redraw cheap)."""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QGraphicsItem, QLabel, QProgressBar

from model.detector import Detection

# Fixed colour scales, so the picture does not pump with loudness. Log-mel values (natural log of mel
# power) of background noise sit around -8, of loud speech up to +8; digital silence is log(1e-6) = -13.8.
LOG_MEL_LEVELS = (-11.0, 8.0)   # in ln(mel power); mapped to a model's feature scale by `log_mel_levels`


def command_colors(n: int) -> list[str]:
    """One colour per command; a model with more commands than colours (enrolled words) reuses them
    (a brush list shorter than the bars crashes pyqtgraph's painting)."""
    return [COMMAND_COLORS[i % len(COMMAND_COLORS)] for i in range(n)]


def log_mel_levels(frontend) -> tuple[float, float]:
    """The spectrogram's colour range in a frontend's feature units (ln for older models, pixels for
    the image-matched frontend), so every model's spectrogram looks the same."""
    low, high = (frontend.log_scale * v + frontend.log_offset for v in LOG_MEL_LEVELS)
    return low, high
# GRU outputs are in -1..1.
HIDDEN_LEVELS = (-1.0, 1.0)
LEVEL_METER_MIN_DBFS = -60

COMMAND_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def cache_static_parts(widget: pg.PlotWidget) -> None:
    """Keep the axes and title of a live plot as cached pixmaps.

    Every data update repaints the whole plot; without a cache the axes re-run their drawing
    commands 20 times a second although they never change (about a fifth of the redraw cost).
    """
    plot_item = widget.getPlotItem()
    for axis in plot_item.axes.values():
        axis["item"].setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    plot_item.titleLabel.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


class ScrollingImage(pg.PlotWidget):
    """A [time, rows] history drawn as an image whose right edge is "now" (x in seconds, <= 0)."""

    def __init__(self, title: str, y_label: str, seconds: float, n_columns: int, n_rows: int, colormap: str,
                 levels: tuple[float, float]):
        super().__init__()
        self.setTitle(title, size="10pt")
        self.setLabel("bottom", "time (s)")
        self.setLabel("left", y_label)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.image = pg.ImageItem(axisOrder="col-major")
        self.image.setColorMap(pg.colormap.get(colormap))
        self.levels = levels
        self.addItem(self.image)
        # setRect scales by the current image size, so it needs an image of the final shape first.
        self.image.setImage(np.full((n_columns, n_rows), levels[0], np.float32), autoLevels=False, levels=levels)
        self.image.setRect(-seconds, 0.0, seconds, float(n_rows))
        self.setXRange(-seconds, 0.0, padding=0)
        self.setYRange(0.0, float(n_rows), padding=0)
        cache_static_parts(self)

    def show_frames(self, frames: np.ndarray) -> None:
        """frames [time, rows], oldest first."""
        self.image.setImage(frames, autoLevels=False, levels=self.levels)


class CommandBars(pg.PlotWidget):
    """One bar per command (smoothed probability) and the detection threshold as a line."""

    def __init__(self, commands: tuple[str, ...], threshold: float):
        super().__init__()
        self.setTitle("Smoothed probability per command", size="10pt")
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.commands = commands
        self.x = np.arange(len(commands), dtype=float)
        self._below = [pg.mkBrush(c) for c in command_colors(len(commands))]
        self._above = pg.mkBrush("#e8e84a")
        self.bars = pg.BarGraphItem(x=self.x, height=np.zeros(len(commands)), width=0.7, brushes=self._below)
        self.addItem(self.bars)
        self.threshold_line = pg.InfiniteLine(pos=threshold, angle=0,
                                              pen=pg.mkPen("#ff4040", width=2, style=Qt.PenStyle.DashLine))
        self.addItem(self.threshold_line)
        self.setYRange(0.0, 1.0, padding=0.02)
        self.setXRange(-0.6, len(commands) - 0.4, padding=0)
        self.getAxis("bottom").setTicks([[(i, name) for i, name in enumerate(commands)]])
        self._shown: tuple[np.ndarray, float] | None = None
        cache_static_parts(self)

    # Bars that moved less than this are not redrawn: in silence nothing moves, and every redraw of
    # the plot repaints the whole widget.
    MIN_CHANGE = 0.005

    def show_values(self, values: np.ndarray, threshold: float) -> None:
        """values [n_commands] in 0..1."""
        values = np.asarray(values, float)
        if self._shown is not None and threshold == self._shown[1] and \
                np.abs(values - self._shown[0]).max() < self.MIN_CHANGE:
            return
        self._shown = (values, threshold)
        brushes = [self._above if v >= threshold else b for v, b in zip(values, self._below)]
        self.bars.setOpts(height=values, brushes=brushes)
        self.threshold_line.setValue(threshold)


class DetectionTimeline(pg.PlotWidget):
    """A whole recording: the smoothed probability of each command over time, detections marked."""

    MAX_LABELS = 200   # text items are expensive; a very long file shows markers without text beyond this

    def __init__(self, commands: tuple[str, ...]):
        super().__init__()
        self.commands = commands
        self.setTitle("Open file... runs a recording through the recognizer: its detections appear here",
                      size="10pt")
        self.setLabel("bottom", "time in file (s)")
        self.setLabel("left", "probability")
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=True, y=False)
        self.setYRange(0.0, 1.1, padding=0)
        self.curves = [self.plot(pen=pg.mkPen(color, width=1)) for color in command_colors(len(commands))]
        self.markers = pg.ScatterPlotItem(size=10, symbol="t1", brush=pg.mkBrush("#e8e84a"), pen=pg.mkPen("k"))
        self.addItem(self.markers)
        self.threshold_line = pg.InfiniteLine(angle=0, pen=pg.mkPen("#ff4040", style=Qt.PenStyle.DashLine))
        self.addItem(self.threshold_line)
        self._texts: list[pg.TextItem] = []

    def show_analysis(self, times_s: np.ndarray, command_posteriors: np.ndarray, detections: list[Detection],
                      threshold: float, name: str = "") -> None:
        """times_s [frames]; command_posteriors [frames, n_commands]; `name` of the recording for the title."""
        self.setTitle(f"{name}: {len(detections)} command(s) found; smoothed probability per command", size="10pt")
        for i, curve in enumerate(self.curves):
            if command_posteriors.shape[0]:
                curve.setData(times_s, command_posteriors[:, i])
            else:
                curve.setData([], [])
        self.markers.setData([d.time_s for d in detections], [d.score for d in detections])
        for text in self._texts:
            self.removeItem(text)
        self._texts = []
        for event in detections[: self.MAX_LABELS]:
            color = COMMAND_COLORS[self.commands.index(event.label) % len(COMMAND_COLORS)] \
                if event.label in self.commands else "w"
            text = pg.TextItem(event.label, color=color, anchor=(0.5, 1.0))
            text.setPos(event.time_s, min(1.08, event.score + 0.08))
            self.addItem(text)
            self._texts.append(text)
        self.threshold_line.setValue(threshold)
        end_s = float(times_s[-1]) if times_s.size else 1.0
        self.setXRange(0.0, end_s, padding=0.01)


class LastCommandLabel(QLabel):
    """The most recent command in large type; it greys out once it is old news."""

    FRESH_S = 1.5

    def __init__(self):
        super().__init__("—")
        font = QFont()
        font.setPointSize(40)
        font.setBold(True)
        self.setFont(font)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumHeight(90)
        self._fresh: bool | None = None

    def show_detection(self, event: Detection | None, age_s: float) -> None:
        # Called on every display tick: touch the widget only when what it shows changes.
        text = "—" if event is None else f"{event.label}  <span style='font-size:16pt'>{event.score:.2f}</span>"
        if text != self.text():
            self.setText(text)
        fresh = event is not None and age_s < self.FRESH_S
        if fresh != self._fresh:
            self._fresh = fresh
            self.setStyleSheet("color: #1a9c1a;" if fresh else "color: #808080;")


class LevelMeter(QProgressBar):
    """Input level of the latest block, in dBFS, with a clip indicator: "CLIP" in red for a while
    after any sample reached full scale (a clipped word is distorted and recognized worse)."""

    # A styled progress bar costs about a millisecond to repaint: refresh it at most this often (a
    # level meter needs no more to look live).
    MIN_INTERVAL_S = 0.1
    CLIP_PEAK = 0.99       # |sample| at or above this counts as clipping (16-bit full scale is 1.0)
    CLIP_HOLD_S = 2.0      # how long the indicator stays after the last clipped block

    def __init__(self):
        super().__init__()
        self.setRange(LEVEL_METER_MIN_DBFS, 0)
        self.setValue(LEVEL_METER_MIN_DBFS)
        self.setFormat("level: -inf dBFS")
        self.setTextVisible(True)
        self.setMaximumWidth(220)
        self._shown_at = 0.0
        self._clipped_at = -math.inf
        self._clip_shown = False

    @property
    def clipping_shown(self) -> bool:
        return self._clip_shown

    def show_level(self, rms_dbfs: float | None, now_s: float, peak: float = 0.0) -> None:
        """`now_s`: a monotonic clock reading, for the refresh limit and the clip hold. `peak`: the
        largest |sample| since the last call, 0..1."""
        if peak >= self.CLIP_PEAK:
            self._clipped_at = now_s     # remembered even when this refresh is skipped
        if now_s - self._shown_at < self.MIN_INTERVAL_S:
            return
        self._shown_at = now_s
        if rms_dbfs is None or not np.isfinite(rms_dbfs):
            value, text = LEVEL_METER_MIN_DBFS, "level: -inf dBFS"
        else:
            value, text = int(max(LEVEL_METER_MIN_DBFS, min(0.0, rms_dbfs))), f"level: {rms_dbfs:.0f} dBFS"
        clip = now_s - self._clipped_at < self.CLIP_HOLD_S
        if clip:
            text += "  CLIP"
        if clip != self._clip_shown:
            self._clip_shown = clip
            self.setStyleSheet("QProgressBar { color: #e03030; font-weight: bold; }" if clip else "")
        if value != self.value() or text != self.format():
            self.setValue(value)
            self.setFormat(text)
