"""The shared gallery on a PostgreSQL server: the same store as the SQLite gallery
(:class:`PostgresGallery`), and a front desk's live view of it (:class:`SharedGallery`:
change notifications, a local copy for matching, an offline check-in queue). No Qt.

psycopg is imported lazily, so the SQLite default never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from desktop.store.postgres.desk import SharedGallery, SyncStatus
    from desktop.store.postgres.gallery import PostgresGallery

__all__ = ["PostgresGallery", "SharedGallery", "SyncStatus"]


def __getattr__(name: str) -> Any:
    if name == "PostgresGallery":
        from desktop.store.postgres.gallery import PostgresGallery

        return PostgresGallery
    if name in ("SharedGallery", "SyncStatus"):
        from desktop.store.postgres import desk

        return getattr(desk, name)
    raise AttributeError(name)
