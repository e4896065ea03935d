"""The manager's Model page (see :mod:`.page`); its Qt-free operations are in
:mod:`.service`."""

from desktop.ui.checkin.model.page import ModelPage

__all__ = ["ModelPage"]
