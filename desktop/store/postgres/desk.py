"""A front desk's live view of the shared gallery: :class:`SharedGallery`.

It is a :class:`~desktop.store.postgres.PostgresGallery` that also

* **listens**: a background thread holds one connection with ``LISTEN
  facestyle_gallery``; a notification (an enrolment, a rename, a deletion, an encoder
  switch on any desk) makes it read the change feed after its own revision and copy only
  the people that changed into the desk's local file
  (:class:`~desktop.store.postgres.replica.DeskReplica`). :meth:`revision` is the copy's,
  so the app's existing 1 Hz revision poll rebuilds the matcher from the local copy;
  :meth:`add_change_listener` tells a headless caller at once;
* **matches locally**: :meth:`embeddings`, :meth:`matcher` and :meth:`nearest_people`
  read the local copy, never the server: matching stays exact and in memory, and keeps
  working while the server is away (also after a restart of the desk);
* **queues check-ins** while the server is away: each check-in gets an idempotency key
  (a UUID) before it is first sent; one that cannot be sent is kept in the local file and
  sent again when the server is back (``ON CONFLICT (uid) DO NOTHING``), so it arrives
  exactly once even when the first attempt committed but its answer was lost;
* **fails fast** while offline: calls that need the server raise
  :class:`~desktop.store.postgres.database.GalleryOfflineError` at once instead of
  waiting for a connect timeout; settings and the last check-in times are answered from
  what was last read.

:meth:`sync_status` gives the status bar's line: connected, or offline since when, and
how many check-ins wait.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from desktop.resources import default as default_setting
from desktop.store.chips import blobs_to_matrix
from desktop.store.database import TimeLike, to_timestamp
from desktop.store.errors import PersonNotFoundError, StoreError
from desktop.store.people import PeopleMixin
from desktop.store.postgres import schema
from desktop.store.postgres.database import GalleryOfflineError, offline_error
from desktop.store.postgres.gallery import PostgresGallery, read_changes
from desktop.store.postgres.replica import DeskReplica, QueuedCheckin, default_replica_path
from desktop.store.records import CheckIn, GalleryEmbeddings

log = logging.getLogger(__name__)

_MISSING: Any = object()
#: Longest pause between two reconnection attempts, in seconds.
RECONNECT_MAX_S = 1.0
#: How often the listening connection is checked while nothing happens, in seconds.
PING_S = 5.0
FLUSH_BATCH = 500


@dataclass(frozen=True)
class SyncStatus:
    """Where a desk stands with the shared gallery (for the status bar)."""

    online: bool
    offline_since: float | None  # Unix seconds
    waiting: int  # check-ins queued on this desk
    location: str  # host:port/dbname
    error: str = ""  # why it is offline

    def describe(self) -> str:
        """"Shared gallery: connected" / "Shared gallery: offline since 14:05, 3 check-ins
        waiting"."""
        if self.online:
            text = "Shared gallery: connected"
        else:
            since = (datetime.fromtimestamp(self.offline_since).strftime("%H:%M")
                     if self.offline_since else "start-up")
            text = f"Shared gallery: offline since {since}"
        if self.waiting:
            text += f", {self.waiting} check-in{'s' if self.waiting != 1 else ''} waiting"
        return text


def _resyncs(method: Callable) -> Callable:
    """After a successful change to people or templates, bring the local copy up to date
    at once (so this desk's matcher sees its own enrolment without waiting for the
    notification)."""

    @functools.wraps(method)
    def wrapper(self: SharedGallery, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        self._sync_quietly()
        return result

    return wrapper


class SharedGallery(PostgresGallery):
    """The shared gallery as one desk sees it (see the module docstring).

    Args:
        url: the server (see :class:`PostgresGallery`).
        replica_path: the desk's local file (default: in the user data folder, one per
            server).
        listen: run the listening thread (False: sync only when :meth:`sync` is called).
        connect_timeout_s: how long a connection attempt may take.

    Raises:
        GalleryOfflineError: the server cannot be reached and this desk has no local copy
            of it yet (with a copy, it opens offline and keeps trying).
    """

    def __init__(self, url: str, *, replica_path: str | Path | None = None,
                 listen: bool = True, connect_timeout_s: float = 3.0, pool_size: int = 4,
                 maintenance: bool = True, **kwargs: Any) -> None:
        self._replica = DeskReplica(replica_path or default_replica_path(url))
        self._state = threading.Lock()
        self._sync_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._online = False
        self._offline_since: float | None = None
        self._error = ""
        self._callbacks: list[Callable[[str], None]] = []
        self._settings_cache: dict[str, Any] = {}
        self._log_cache: dict[tuple, list[CheckIn]] = {}
        self._arrays: dict[str, GalleryEmbeddings] = {}  # per encoder, at a local revision
        self._arrays_lock = threading.Lock()
        self._known_last: dict[int, float] = {}
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        self._online = True  # until the first failure: opening reads settings
        try:
            super().__init__(url, connect_timeout_s=connect_timeout_s, pool_size=pool_size,
                             maintenance=maintenance, **kwargs)
        except GalleryOfflineError as exc:
            if self._replica.revision() == 0:
                self._replica.close()
                raise
            self._closed = False
            self._went_offline(exc)
            log.warning("the shared gallery is offline; this desk starts from its local "
                        "copy (revision %d)", self._replica.revision())
        except BaseException:
            self._replica.close()
            raise
        if self._online:
            self._sync_quietly()
            self._flush_quietly()
        if listen:
            self._listener = threading.Thread(target=self._listen, daemon=True,
                                              name="facestyle-gallery-listener")
            self._listener.start()

    # ------------------------------------------------------------------ state

    @property
    def online(self) -> bool:
        return self._online

    @property
    def replica(self) -> DeskReplica:
        return self._replica

    def sync_status(self) -> SyncStatus:
        with self._state:
            online, since, error = self._online, self._offline_since, self._error
        try:
            waiting = self._replica.waiting()
        except Exception:  # the local file is busy: say nothing rather than wait
            waiting = 0
        return SyncStatus(online, since, waiting, self.location, error)

    def add_change_listener(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(kind)`` from the listening thread when something changed:
        ``"people"`` (the local copy was updated), ``"settings"``, ``"online"``,
        ``"offline"``."""
        self._callbacks.append(callback)

    def _tell(self, kind: str) -> None:
        for callback in list(self._callbacks):
            try:
                callback(kind)
            except Exception:
                log.exception("a shared-gallery change listener failed")

    def _went_offline(self, exc: BaseException) -> None:
        with self._state:
            was = self._online
            self._online = False
            self._error = getattr(exc, "message", str(exc))
            if self._offline_since is None:
                self._offline_since = time.time()
        if was:
            log.warning("the shared gallery went offline: %s", self._error)
            self._tell("offline")

    def _came_online(self) -> None:
        with self._state:
            was = self._online
            self._online, self._offline_since, self._error = True, None, ""
        if not was:
            log.info("the shared gallery is reachable again")
            self._tell("online")

    def _guard(self) -> None:
        """Fail at once while offline (no connect timeout on the caller's thread)."""
        if not self._online and not self._closed:
            raise GalleryOfflineError(
                f"The shared gallery at {self.location} is offline"
                + (f" ({self._error})" if self._error else "") + ".",
                "This desk keeps recognising people and queues check-ins; it reconnects "
                "by itself.")

    @contextlib.contextmanager
    def _connection(self) -> Any:
        self._guard()
        try:
            with super()._connection() as conn:
                yield conn
        except GalleryOfflineError as exc:
            self._went_offline(exc)
            raise

    # ------------------------------------------------------------------ the local copy

    def sync(self) -> bool:
        """Copy what changed on the server into the local file; True when it changed."""
        with self._sync_lock:
            local = self._replica.revision()
            with self._read() as conn:
                conn.raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                gallery_id = conn.execute("SELECT value FROM meta WHERE key = 'gallery_id'"
                                          ).fetchone()
                gallery_id = int(gallery_id[0]) if gallery_id else 0
                if gallery_id != self._replica_gallery_id():
                    local = 0
                current, changed = read_changes(conn, local)
                if changed is not None and not changed:
                    return False
                if changed is None:
                    people = conn.execute("SELECT id, name, employee_id FROM people").fetchall()
                    templates = conn.execute("SELECT id, person_id, model_id, embedding FROM "
                                             "templates").fetchall()
                else:
                    ids = sorted(changed)
                    people = conn.execute("SELECT id, name, employee_id FROM people WHERE "
                                          "id = ANY(?)", (ids,)).fetchall()
                    templates = conn.execute("SELECT id, person_id, model_id, embedding FROM "
                                             "templates WHERE person_id = ANY(?)",
                                             (ids,)).fetchall()
            self._replica.apply(current, changed, people, templates)
            self._patch_arrays(local, current, changed, people, templates)
            self._replica.set_state("gallery_id", gallery_id)
        log.debug("local copy at revision %d (%s)", current,
                  "full" if changed is None else f"{len(changed)} people")
        return True

    def _replica_gallery_id(self) -> int:
        return int(self._replica.get_state("gallery_id", 0))

    def _sync_quietly(self) -> None:
        try:
            if self.sync():
                self._tell("people")
        except StoreError as exc:
            log.warning("could not update the local copy of the gallery: %s", exc)

    def revision(self) -> int:
        """The local copy's revision (changes when the copy was updated)."""
        return self._replica.revision()

    def embeddings(self, model_id: str) -> GalleryEmbeddings:
        """This encoder's templates from the local copy (works offline). Kept in memory
        and patched person by person as changes arrive, so a change costs in proportion
        to what changed plus one pass over the arrays, not a reload of every template."""
        revision = self._replica.revision()
        with self._arrays_lock:
            held = self._arrays.get(model_id)
            if held is not None and held.revision == revision:
                return held
        fresh = self._replica.embeddings(model_id)
        with self._arrays_lock:
            self._arrays[model_id] = fresh
        return fresh

    def _patch_arrays(self, before: int, revision: int, changed: set[int] | None,
                      people: list[tuple], templates: list[tuple]) -> None:
        """Apply one sync to the in-memory arrays (see :meth:`embeddings`); arrays that
        were not at ``before`` are dropped and reloaded from the file when next asked."""
        with self._arrays_lock:
            if changed is None:
                self._arrays.clear()
                return
            names = {int(pid): str(name) for pid, name, _ in people}
            gone = np.fromiter(changed, dtype=np.int64)
            for model_id, held in list(self._arrays.items()):
                if held.revision != before:
                    del self._arrays[model_id]
                    continue
                keep = ~np.isin(held.person_ids, gone)
                rows = sorted((int(p), int(t), e) for t, p, m, e in templates if m == model_id)
                added = blobs_to_matrix([bytes(e) for _, _, e in rows])
                kept_names = {k: v for k, v in held.names.items() if k not in changed}
                kept_names.update({p: names[p] for p, _, _ in rows})
                self._arrays[model_id] = GalleryEmbeddings(
                    model_id=model_id,
                    embeddings=np.concatenate([held.embeddings[keep], added]),
                    person_ids=np.concatenate([held.person_ids[keep],
                                               np.array([r[0] for r in rows], np.int64)]),
                    template_ids=np.concatenate([held.template_ids[keep],
                                                 np.array([r[1] for r in rows], np.int64)]),
                    names=kept_names, revision=revision)

    def nearest_people(self, model_id: str, query: Any, k: int = 3) -> list[Any]:
        """Nearest people from the local copy (exact, in memory; works offline)."""
        return PeopleMixin.nearest_people(self, model_id, query, k)

    enrol = _resyncs(PostgresGallery.enrol)
    add_templates = _resyncs(PostgresGallery.add_templates)
    remove_template = _resyncs(PostgresGallery.remove_template)
    rename_person = _resyncs(PostgresGallery.rename_person)
    delete_person = _resyncs(PostgresGallery.delete_person)
    replace_embeddings = _resyncs(PostgresGallery.replace_embeddings)

    # ------------------------------------------------------------------ settings

    def get_setting(self, key: str, default: Any = _MISSING) -> Any:
        """As :meth:`Gallery.get_setting`; while offline, the value last read."""
        value = _MISSING
        if self._online:
            try:
                value = super().get_setting(key, _MISSING)
                self._settings_cache[key] = value
            except GalleryOfflineError:
                value = self._settings_cache.get(key, _MISSING)
        else:
            value = self._settings_cache.get(key, _MISSING)
        if value is not _MISSING:
            return value
        if default is not _MISSING:
            return default
        return default_setting("checkin", key)

    # ------------------------------------------------------------------ check-ins

    def record_checkin_if_due(self, person_id: int, d: float, *, cooldown_s: float,
                              camera: str = "", rule: str = "", score: float | None = None,
                              model_id: str = "", at: TimeLike | None = None,
                              uid: str | None = None) -> CheckIn | None:
        """As :meth:`Gallery.record_checkin_if_due`; while the server is away the
        check-in is queued on this desk (cooldown judged from what the desk knows)."""
        ts = time.time() if at is None else to_timestamp(at)
        uid = uid or str(uuid.uuid4())
        rule = str(getattr(rule, "name", rule))
        if self._online:
            try:
                made = super().record_checkin_if_due(
                    person_id, d, cooldown_s=cooldown_s, camera=camera, rule=rule,
                    score=score, model_id=model_id, at=ts, uid=uid)
                if made is not None:
                    self._known_last[int(person_id)] = ts
                return made
            except GalleryOfflineError:
                pass  # the insert may have committed: queue it under the same key
        last = self._last_known(int(person_id))
        if last is not None and ts - last < cooldown_s:
            return None
        return self._enqueue(person_id, d, camera, rule, score, model_id, ts, uid)

    def record_checkin(self, person_id: int, d: float, *, camera: str = "", rule: str = "",
                       score: float | None = None, model_id: str = "",
                       at: TimeLike | None = None, uid: str | None = None) -> CheckIn:
        ts = time.time() if at is None else to_timestamp(at)
        uid = uid or str(uuid.uuid4())
        rule = str(getattr(rule, "name", rule))
        if self._online:
            try:
                made = super().record_checkin(person_id, d, camera=camera, rule=rule,
                                              score=score, model_id=model_id, at=ts, uid=uid)
                self._known_last[int(person_id)] = ts
                return made
            except GalleryOfflineError:
                pass
        return self._enqueue(person_id, d, camera, rule, score, model_id, ts, uid)

    def _enqueue(self, person_id: int, d: float, camera: str, rule: str,
                 score: float | None, model_id: str, at: float, uid: str) -> CheckIn:
        known = self._replica.person(person_id)
        if known is None:
            raise PersonNotFoundError(f"No person with id {person_id} in the gallery.")
        item = QueuedCheckin(uid, int(person_id), known[0], at, float(d), camera, rule,
                             None if score is None else float(score), model_id)
        self._replica.enqueue(item)
        self._known_last[int(person_id)] = max(at, self._known_last.get(int(person_id), at))
        log.info("queued the check-in of %s until the shared gallery is back", known[0])
        return item.as_checkin(known[1])

    def _last_known(self, person_id: int) -> float | None:
        times = [t for t in (self._known_last.get(person_id),
                             self._replica.last_queued_at(person_id)) if t is not None]
        return max(times) if times else None

    def last_checkin(self, person_id: int) -> CheckIn | None:
        """As :meth:`Gallery.last_checkin`; offline, the newest this desk knows of."""
        if self._online:
            with contextlib.suppress(GalleryOfflineError):
                found = super().last_checkin(person_id)
                if found is not None:
                    self._known_last[int(person_id)] = max(
                        found.at, self._known_last.get(int(person_id), found.at))
                return found
        queued = [q for q in self._replica.pending() if q.person_id == int(person_id)]
        if queued:
            return queued[-1].as_checkin()
        at = self._known_last.get(int(person_id))
        if at is None:
            self._guard()
            return None
        name = (self._replica.person(person_id) or ("", None))[0]
        return CheckIn(0, int(person_id), name, at, 0.0, "", "", None, "")

    def last_checkin_times(self) -> dict[int, float]:
        if self._online:
            with contextlib.suppress(GalleryOfflineError):
                times = super().last_checkin_times()
                self._known_last.update(times)
                return times
        out = dict(self._known_last)
        for q in self._replica.pending():
            out[q.person_id] = max(q.at, out.get(q.person_id, q.at))
        return out

    def checkins_between(self, start: TimeLike | None = None, end: TimeLike | None = None, *,
                         person_id: int | None = None, newest_first: bool = False,
                         limit: int | None = None) -> list[CheckIn]:
        """As :meth:`Gallery.checkins_between`; offline, the last answer to the same
        question plus the check-ins queued on this desk."""
        key = (start, end, person_id, newest_first, limit)
        if self._online:
            try:
                rows = super().checkins_between(start, end, person_id=person_id,
                                                newest_first=newest_first, limit=limit)
                if len(self._log_cache) > 16:
                    self._log_cache.clear()
                self._log_cache[key] = rows
                return rows
            except GalleryOfflineError:
                pass
        lo = None if start is None else to_timestamp(start)
        hi = None if end is None else to_timestamp(end)
        queued = [q.as_checkin() for q in self._replica.pending()
                  if (lo is None or q.at >= lo) and (hi is None or q.at < hi)
                  and (person_id is None or q.person_id == person_id)]
        rows = sorted(self._log_cache.get(key, []) + queued, key=lambda c: (c.at, c.id),
                      reverse=newest_first)
        return rows[:limit] if limit is not None else rows

    def flush(self) -> int:
        """Send the queued check-ins (oldest first); returns how many were sent. A copy
        the server already has is skipped (same key); a person deleted meanwhile keeps
        the check-in under their name, as deleting with history kept does."""
        sent = 0
        with self._flush_lock:
            while True:
                items = self._replica.pending(FLUSH_BATCH)
                if not items:
                    return sent
                with self._write() as conn:
                    for q in items:
                        conn.execute(
                            "INSERT INTO checkins(person_id, person_name, at, d, camera, rule,"
                            " score, model_id, uid) SELECT (SELECT id FROM people WHERE id = ?),"
                            " ?, ?, ?, ?, ?, ?, ?, ? ON CONFLICT (uid) DO NOTHING",
                            (q.person_id, q.person_name, q.at, q.d, q.camera, q.rule, q.score,
                             q.model_id, q.uid))
                self._replica.remove([q.uid for q in items])
                sent += len(items)
                log.info("sent %d queued check-in(s) to the shared gallery", len(items))

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except StoreError as exc:
            log.warning("queued check-ins could not be sent yet: %s", exc)

    # ------------------------------------------------------------------ the listener

    def _listen(self) -> None:
        pause = 0.1
        while not self._stop.is_set():
            try:
                self._listen_once()
            except Exception as exc:  # any failure: offline, try again
                if not self._stop.is_set():
                    if not isinstance(exc, (self._psycopg.Error, StoreError)):
                        log.exception("the shared-gallery listener failed")
                    self._went_offline(exc if isinstance(exc, StoreError)
                                       else offline_error(self.url, exc))
            self._stop.wait(pause)
            pause = min(pause * 2, RECONNECT_MAX_S)
            if self._online:
                pause = 0.1

    def _listen_once(self) -> None:
        if self._pool is None:
            self._open()  # a desk that started offline
        with self._connect(autocommit=True) as conn:
            conn.execute(f"LISTEN {schema.CHANNEL}")
            if not self._online:
                self._renew_pool()
            self._came_online()
            self._settings_cache.clear()
            self._sync_quietly()
            self._flush_quietly()
            pinged = time.monotonic()
            while not self._stop.is_set():
                kinds = {n.payload for n in conn.notifies(timeout=0.5, stop_after=1)}
                if self._stop.is_set():
                    return
                if not self._online:  # a request saw the server fail: check it ourselves
                    conn.execute("SELECT 1")
                    self._renew_pool()
                    self._came_online()
                if "people" in kinds:
                    self._sync_quietly()
                if "settings" in kinds:
                    self._settings_cache.clear()
                    self._tell("settings")
                if self._replica.waiting():
                    self._flush_quietly()
                if time.monotonic() - pinged > PING_S:
                    conn.execute("SELECT 1")
                    pinged = time.monotonic()

    def close(self) -> None:
        """Stop listening, close the pool and the local file. Idempotent."""
        self._stop.set()
        listener, self._listener = self._listener, None
        if listener is not None and listener is not threading.current_thread():
            listener.join(timeout=5.0)
        super().close()
        self._replica.close()
