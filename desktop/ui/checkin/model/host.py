"""What a tab of the Model page may ask of the page that holds it.

The tabs (:mod:`.finetune_tab`, :mod:`.versions_tab`, :mod:`.rule_tab`) take their page as
a :class:`ModelPageHost`, so they depend on this small interface and never import
:mod:`.page`; the page imports the tabs, and the arrows run one way. :class:`.page.ModelPage`
is the one implementation (tests may pass any object with these members).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from desktop.ui.checkin.model.service import ModelOverview, ModelService
from desktop.ui.checkin.model.widgets import JobSlot


@runtime_checkable
class ModelPageHost(Protocol):
    """The page's state and actions that its tabs use."""

    ctx: Any  #: the manager's context (``ctx.gallery`` is the open gallery)
    service: ModelService  #: the page's Qt-free operations
    jobs: JobSlot  #: one long job at a time, shared by every tab
    overview: ModelOverview | None  #: the newest state read, None before the first

    def refresh(self) -> None:
        """Read the model's state again (off the UI thread) and show it in every tab."""

    def warm_up(self) -> Any:
        """Load the training machinery in the background, once."""

    def version_names(self) -> list[str]:
        """The names of the saved encoder versions."""

    def compare(self, name: str) -> Any:
        """Score version ``name`` and the encoder in use on the same held-out pairs."""

    def confirm_activate(self, name: str) -> Any:
        """Ask the manager, then activate ``name``."""

    def confirm_rollback(self) -> Any:
        """Ask the manager, then roll back to the previous encoder."""

    def confirm_delete(self, name: str) -> Any:
        """Ask the manager, then delete version ``name``."""

    def activate(self, name: str) -> bool:
        """Activate ``name`` (guarded), re-embed the gallery, reload the live engine."""

    def cancel_switch(self) -> None:
        """Stop an activation or roll-back after the current batch."""

    def rule_changed(self) -> None:
        """The decision rule changed: the live session rebuilds its matcher."""
