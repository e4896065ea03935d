"""The SQLite gallery (people, face templates) and the check-in log. No Qt.

Public API (see each module for details)::

    from desktop.store import Gallery, open_gallery, default_db_path, restore_backup

    g = Gallery()                      # user_dirs().data / "gallery.sqlite3"
    person = g.enrol("Ada", [NewTemplate(chip, emb, engine.model_id, source="webcam")])
    matcher = g.matcher(engine.model_id)          # desktop.face.matching.Matcher
    m = matcher.identify_one(descriptor)
    if m.accepted:
        g.record_checkin_if_due(m.person_id, m.d, cooldown_s=4 * 3600, rule=m.rule)

Opening a damaged file raises :class:`GalleryCorruptError` (with ``.backups``); call
:func:`restore_backup` and open again.
"""

from desktop.store.backups import list_backups, restore_backup
from desktop.store.errors import (
    AmbiguousNameError,
    BackupError,
    BackupInfo,
    DuplicatePersonError,
    EnrolmentError,
    GalleryBusyError,
    GalleryCorruptError,
    GalleryOpenError,
    GalleryUnreadableError,
    MigrationError,
    PersonNotFoundError,
    PinError,
    PinLockedError,
    SchemaTooNewError,
    StoreError,
)
from desktop.store.gallery import (
    DB_FILENAME,
    Gallery,
    MaintenanceReport,
    default_db_path,
    open_gallery,
)
from desktop.store.records import (
    CheckIn,
    DeleteResult,
    GalleryEmbeddings,
    NewTemplate,
    Person,
    Template,
    WithheldCheckIn,
)

__all__ = [
    "DB_FILENAME",
    "AmbiguousNameError",
    "BackupError",
    "BackupInfo",
    "CheckIn",
    "DeleteResult",
    "DuplicatePersonError",
    "EnrolmentError",
    "Gallery",
    "GalleryBusyError",
    "GalleryCorruptError",
    "GalleryEmbeddings",
    "GalleryOpenError",
    "GalleryUnreadableError",
    "MaintenanceReport",
    "MigrationError",
    "NewTemplate",
    "Person",
    "PersonNotFoundError",
    "PinError",
    "PinLockedError",
    "SchemaTooNewError",
    "StoreError",
    "Template",
    "WithheldCheckIn",
    "default_db_path",
    "list_backups",
    "open_gallery",
    "restore_backup",
]
