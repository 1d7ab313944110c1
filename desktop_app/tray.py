"""The tray icon: the app's state at a glance and its everyday controls while the window is closed.

Its look shows the state (a coloured dot on the app icon: green listening, amber push-to-talk waiting
for the key, blue talking, grey paused, red microphone lost); its menu opens the window, switches the
listening mode, actions and notifications, picks the model and quits. It holds no plots: `gui --tray`
never builds the window (nor imports pyqtgraph) until the user opens it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QPointF, QRectF, Slot
from PySide6.QtGui import QAction, QActionGroup, QColor, QIcon, QPainter
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from desktop_app.listen_mode import TAP_OPEN_S, ListenMode
from desktop_app.live_session import LiveSession
from model.model_config import default_model_dir

ICON_PATH = Path(__file__).resolve().parent.parent / "assets" / "icon.svg"
STATE_COLOURS = {"listening": "#2fbf4f", "waiting": "#f0a020", "talking": "#3a8dff", "paused": "#8a8f96",
                 "lost": "#e03030"}    # one per LiveSession.state
ICON_PX = 64
NOTIFY_MS = 2500


def tray_available() -> bool:
    return QSystemTrayIcon.isSystemTrayAvailable()


def app_icon() -> QIcon:
    return QIcon(str(ICON_PATH))


def state_icon(state: str) -> QIcon:
    """The app icon with the state's dot in its lower right corner."""
    pixmap = app_icon().pixmap(ICON_PX, ICON_PX)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QColor("#101418"))
    painter.setBrush(QColor(STATE_COLOURS[state]))
    radius = ICON_PX * 0.22
    painter.drawEllipse(QRectF(QPointF(ICON_PX - 2 * radius - 1, ICON_PX - 2 * radius - 1),
                               QPointF(ICON_PX - 1, ICON_PX - 1)))
    painter.end()
    return QIcon(pixmap)


class Tray(QObject):
    def __init__(self, session: LiveSession, open_window: Callable[[], None], quit_app: Callable[[], None],
                 list_models: Callable[[], list[Path]]):
        super().__init__()
        self.session = session
        self.list_models = list_models
        self.icons = {state: state_icon(state) for state in STATE_COLOURS}
        self.icon = QSystemTrayIcon(self.icons["paused"])
        self.menu = QMenu()
        self.open_action = self.menu.addAction("Open window", open_window)
        self.menu.addSeparator()
        self.mode_group = QActionGroup(self)
        self.mode_actions: dict[ListenMode, QAction] = {}
        for mode, name in ((ListenMode.ALWAYS, "Always listening"), (ListenMode.PUSH_TO_TALK, "Push-to-talk"),
                           (ListenMode.PAUSED, "Paused (microphone off)")):
            action = self.menu.addAction(name)
            action.setCheckable(True)
            action.triggered.connect(lambda _checked=False, mode=mode: session.set_mode(mode))
            self.mode_group.addAction(action)
            self.mode_actions[mode] = action
        self.tap_action = self.menu.addAction(f"Push-to-talk: a tap opens for {TAP_OPEN_S:g} s")
        self.tap_action.setCheckable(True)
        self.tap_action.toggled.connect(session.set_talk_tap)
        self.menu.addSeparator()
        self.actions_action = self.menu.addAction("Actions on")
        self.actions_action.setCheckable(True)
        self.actions_action.toggled.connect(session.set_actions_enabled)
        self.notify_action = self.menu.addAction("Notify on commands")
        self.notify_action.setCheckable(True)
        self.notify_action.toggled.connect(session.set_notify)
        self.model_menu = self.menu.addMenu("Model")
        self.model_menu.aboutToShow.connect(self._fill_model_menu)
        self.menu.addSeparator()
        self.quit_action = self.menu.addAction("Quit", quit_app)
        self.icon.setContextMenu(self.menu)
        self.icon.setToolTip("speechcmd")
        # A left click opens the window (the menu is on the right button).
        self.icon.activated.connect(lambda reason: open_window()
                                    if reason == QSystemTrayIcon.ActivationReason.Trigger else None)
        session.state_changed.connect(self.show_state)
        session.actions_changed.connect(self.show_state)
        session.command_fired.connect(self._notify)
        self.show_state()

    def show(self) -> None:
        self.icon.show()

    @Slot()
    def show_state(self) -> None:
        s = self.session
        state = s.state
        self.state = state
        self.icon.setIcon(self.icons[state])
        self.icon.setToolTip(f"speechcmd: {s.state_text()}")
        self.mode_actions[s.mode].setChecked(True)
        self.mode_actions[ListenMode.PUSH_TO_TALK].setText(f"Push-to-talk (hold {s.talk_key})")
        for action, value in ((self.tap_action, s.talk_tap), (self.actions_action, s.action_runner.enabled),
                              (self.notify_action, s.notify)):
            action.blockSignals(True)
            action.setChecked(value)
            action.blockSignals(False)

    @Slot()
    def _fill_model_menu(self) -> None:
        self.model_menu.clear()
        current = self.session.spec.path.resolve() if self.session.spec.path else None
        entries = [("Shipped model", default_model_dir())] + [(f"Personal: {f.name}", f) for f in self.list_models()]
        for name, folder in entries:
            action = self.model_menu.addAction(name)
            action.setCheckable(True)
            action.setChecked(current is not None and Path(folder).resolve() == current)
            action.triggered.connect(lambda _checked=False, folder=folder: self.session.switch_model(folder))

    @Slot(object)
    def _notify(self, event) -> None:
        if self.session.notify:
            # Through the desktop's notification service where Qt finds one (D-Bus on Linux).
            self.icon.showMessage("speechcmd", f"{event.label}  ({event.score:.2f})", self.icons["listening"],
                                  NOTIFY_MS)

    def say_once(self, settings, key: str, message: str) -> None:
        """A balloon the user sees once ever (e.g. that closing the window keeps the app running)."""
        if str(settings.value(key, "")) != "done":
            self.icon.showMessage("speechcmd", message, self.icons[self.state], NOTIFY_MS * 2)
            settings.setValue(key, "done")
