"""The window's "Actions..." dialog: a table of command -> action that edits and saves actions.toml.

One row per command of the model. "Does" chooses nothing / run a program / press keys; the action
cell is the program line (split like a shell would split it, with quotes, but never run through a
shell) or the key names. "Try" runs the row as it is now, saved or not. "Save" writes the file through
the same strict parser that loads it (desktop_app/actions.py), so what is saved always loads.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (QComboBox, QDialog, QDoubleSpinBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QPushButton, QSpinBox, QTableWidget, QVBoxLayout, QWidget)

from desktop_app.actions import DEFAULT_TIMEOUT_MS, Action, ActionResult, ActionsError, ActionSet, save_actions
from model.labels import command_labels

KINDS = ("nothing", "run a program", "press keys")
COLUMNS = ("Command", "Does", "Program and arguments, or keys", "Min score", "Cooldown ms", "")


class ActionsDialog(QDialog):
    def __init__(self, session, path: Path, action_set: ActionSet, labels, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.path = Path(path)
        self.labels = list(labels)
        self.commands = command_labels(self.labels)
        self.setWindowTitle("Actions: what each command does")
        self.resize(820, 460)
        self.table = QTableWidget(len(self.commands), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.rows: dict[str, dict] = {}
        self._timeouts: dict[str, float] = {}
        for row, label in enumerate(self.commands):
            self._add_row(row, label, action_set.actions.get(label))
        self.status = QLabel(f"File: {self.path}")
        self.status.setWordWrap(True)
        self.load_error = session.actions_error
        if self.load_error:
            # Saving from an empty table would silently drop every binding that had only a typo.
            self._say(f"The file did not load ({self.load_error}). Fix it in an editor, or set the actions "
                      f"here: Save replaces it and keeps the old one as {self.path.name}.bak.", error=True)
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(self.save)
        close_button = QPushButton("Close")
        close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.save_button)
        buttons.addWidget(close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Programs run without a shell; {label}, {score} and {time} are replaced inside "
                                "arguments. Keys: X keysym names, chords like ctrl+shift+t, several separated "
                                "by spaces."))
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        session.action_reported.connect(self._show_result)

    def _add_row(self, row: int, label: str, action: Action | None) -> None:
        name = QLabel(label)
        name.setAlignment(Qt.AlignmentFlag.AlignCenter)
        kind = QComboBox()
        kind.addItems(KINDS)
        text = QLineEdit()
        min_score = QDoubleSpinBox()
        min_score.setDecimals(3)
        min_score.setRange(0.0, 1.0)
        min_score.setSingleStep(0.05)
        min_score.setSpecialValueText("any")
        cooldown = QSpinBox()
        cooldown.setRange(0, 86_400_000)   # what the parser accepts: a day
        cooldown.setSingleStep(250)
        try_button = QPushButton("Try")
        try_button.clicked.connect(lambda _=False, lab=label: self.try_row(lab))
        if action is not None:
            kind.setCurrentIndex(1 if action.run is not None else 2)
            text.setText(shlex.join(action.run) if action.run is not None else action.keys or "")
            min_score.setValue(action.min_score)
            cooldown.setValue(int(action.cooldown_ms))
            self._timeouts[label] = action.timeout_ms
        for column, widget in enumerate((name, kind, text, min_score, cooldown, try_button)):
            self.table.setCellWidget(row, column, widget)
        self.rows[label] = {"kind": kind, "text": text, "min_score": min_score, "cooldown": cooldown, "try": try_button}

    def set_row(self, label: str, kind: str, text: str, min_score: float = 0.0, cooldown_ms: int = 0) -> None:
        """Fill one row (what a user types; tests drive the dialog through it)."""
        row = self.rows[label]
        row["kind"].setCurrentIndex(KINDS.index(kind))
        row["text"].setText(text)
        row["min_score"].setValue(min_score)
        row["cooldown"].setValue(cooldown_ms)

    def row_action(self, label: str) -> Action | None:
        """The row as an Action (None: does nothing). ActionsError for a line that cannot be split."""
        row = self.rows[label]
        kind = KINDS[row["kind"].currentIndex()]
        text = row["text"].text().strip()
        if kind == "nothing":
            return None
        common = dict(min_score=float(row["min_score"].value()), cooldown_ms=float(row["cooldown"].value()),
                      timeout_ms=self._timeouts.get(label, DEFAULT_TIMEOUT_MS))
        if kind == "run a program":
            try:
                argv = shlex.split(text)
            except ValueError as exc:
                raise ActionsError(f"{label}: cannot split the program line: {exc}") from None
            if not argv:
                raise ActionsError(f"{label}: no program given")
            return Action(label, run=tuple(argv), **common)
        if not text:
            raise ActionsError(f"{label}: no keys given")
        return Action(label, keys=text, **common)

    def actions(self) -> list[Action]:
        return [a for a in (self.row_action(label) for label in self.commands) if a is not None]

    @Slot()
    def save(self) -> bool:
        try:
            actions = self.actions()
            if self.path.exists():   # Save rewrites the file (comments are not kept): the old one stays beside it
                backup = self.path.with_name(self.path.name + ".bak")
                backup.write_bytes(self.path.read_bytes())
                os.chmod(backup, 0o600)
            checked = save_actions(self.path, actions, self.labels)
        except (ActionsError, OSError) as exc:
            self._say(f"Not saved: {exc}", error=True)
            return False
        self.load_error = None
        self.session.actions_error = None
        self.session.set_action_set(checked)
        self._say(f"Saved {len(checked)} action(s) to {self.path}")
        return True

    def try_row(self, label: str) -> bool:
        try:
            action = self.row_action(label)
            if action is None:
                self._say(f"{label} does nothing yet: choose what it does", error=True)
                return False
            # The same checks as loading (placeholders, key names, the key tool) before it runs.
            from desktop_app.actions import dump_actions, parse_actions
            checked = parse_actions(dump_actions([action]), self.labels, "this row")
        except ActionsError as exc:
            self._say(str(exc), error=True)
            return False
        self._say(f"trying {label}: {action.describe()} ...")
        return self.session.try_action(checked.actions[label], checked)

    @Slot(object)
    def _show_result(self, result: ActionResult) -> None:
        self._say(result.message, error=not result.ok)

    def _say(self, message: str, error: bool = False) -> None:
        self.status.setText(message)
        self.status.setStyleSheet("color: #b02020;" if error else "")
