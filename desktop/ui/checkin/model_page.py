"""Model: the active face encoder and decision rule, and the gallery's templates by encoder.

This is the slot the encoder training work fills (fine-tuning with the triplet loss, the
learned verification head, ROC, activate / roll back); until then it reports what is in
use. Replace the ``model`` entry of :data:`desktop.ui.checkin.manager.PAGES` to swap it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from desktop.errors import FacestyleError
from desktop.ui.checkin.context import ManagerContext
from desktop.ui.checkin.live import engine_device
from desktop.ui.checkin.page_common import cell, page_layout, read_only_table


class ModelPage(QWidget):
    def __init__(self, ctx: ManagerContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        layout = page_layout(self, "Model", "The face encoder f(x) that turns a face into "
                             "128 numbers, and the rule that decides whether two faces are "
                             "the same person.")
        self.summary = QLabel(objectName="modelSummary")
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.table = read_only_table(["Encoder (model id)", "Templates", "Status"],
                                     "modelTemplates")
        layout.addWidget(self.table, 1)
        note = QLabel("Fine-tuning the encoder on the gallery (triplet loss) and a learned "
                      "verification head will appear on this page.")
        note.setWordWrap(True)
        note.setStyleSheet("color: palette(placeholder-text);")
        layout.addWidget(note)

    def refresh(self) -> None:
        engine = self.ctx.engine
        session = self.ctx.session
        active = getattr(engine, "model_id", None)
        rule = f"d ≤ tau = {session.tau:.2f}"
        if session.margin:
            rule += f", and the next person at least {session.margin:.2f} further"
        self.summary.setText(
            f"<p><b>Active encoder:</b> {active or 'loading…'}"
            + (f" on {engine_device(engine)}" if engine is not None else "")
            + f"<br><b>Decision rule:</b> {rule}</p>")
        try:
            counts = self.ctx.gallery.model_counts()
        except FacestyleError as exc:
            self.summary.setText(self.summary.text() + f"<p>{exc.message}</p>")
            return
        self.table.setRowCount(len(counts))
        for row, (model_id, n) in enumerate(sorted(counts.items())):
            self.table.setItem(row, 0, cell(model_id))
            self.table.setItem(row, 1, cell(str(n), align_right=True))
            status = ("in use" if model_id == active else
                      "waiting to be re-embedded" if active else "")
            self.table.setItem(row, 2, cell(status))
