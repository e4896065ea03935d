"""Settings and the manager PIN (a mixin of :class:`desktop.store.Gallery`)."""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

from desktop.resources import default as default_setting
from desktop.store.errors import PinError, PinLockedError
from desktop.store.pin import PinHash, hash_pin, verify_pin

log = logging.getLogger(__name__)

#: Settings the check-in side reads, with their shipped defaults
#: (``resources/default_settings.json``, section ``checkin``).
CHECKIN_SETTINGS = ("tau", "margin", "cooldown_hours", "retention_days", "liveness")
_UNCHANGED: Any = object()

#: Wrong PINs allowed in a row before PIN entry is locked, and the lock's length.
PIN_FREE_ATTEMPTS = 5
PIN_FIRST_LOCK_S = 30.0
PIN_MAX_LOCK_S = 900.0
_PIN_FAILURES = "_pin_failures"
_PIN_LOCKED_UNTIL = "_pin_locked_until"


class SettingsMixin:
    """Key-value settings (JSON) and the scrypt-hashed manager PIN (needs :class:`Database`)."""

    # ------------------------------------------------------------------ settings

    def get_setting(self, key: str, default: Any = _UNCHANGED) -> Any:
        """A stored setting (JSON value); else ``default``; else the shipped check-in
        default for ``tau``, ``margin``, ``cooldown_hours``, ``retention_days`` and
        ``liveness`` (``"off"``, ``"passive"`` or ``"challenge"``)."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        if row is not None:
            return json.loads(row[0])
        if default is not _UNCHANGED:
            return default
        return default_setting("checkin", key)

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable setting (None deletes it, restoring the default)."""
        with self._write() as conn:
            if value is None:
                conn.execute("DELETE FROM settings WHERE key = ?", (key,))
            else:
                conn.execute("INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) "
                             "DO UPDATE SET value = excluded.value", (key, json.dumps(value)))

    def settings(self) -> dict[str, Any]:
        """The check-in settings (stored or default) plus every other stored public key."""
        out = {k: self.get_setting(k) for k in CHECKIN_SETTINGS}
        with self._read() as conn:
            for key, value in conn.execute("SELECT key, value FROM settings ORDER BY key"):
                if not key.startswith("_"):
                    out[key] = json.loads(value)
        return out

    # ------------------------------------------------------------------ manager PIN

    def has_pin(self) -> bool:
        with self._read() as conn:
            return conn.execute("SELECT 1 FROM manager_pin WHERE id = 1").fetchone() is not None

    def _stored_pin(self) -> PinHash | None:
        with self._read() as conn:
            row = conn.execute("SELECT salt, hash, n, r, p FROM manager_pin WHERE id = 1"
                               ).fetchone()
        return PinHash(*row) if row else None

    def pin_lockout_remaining(self, now: float | None = None) -> float:
        """Seconds until a PIN may be tried again after repeated wrong ones (0: now)."""
        until = self.get_setting(_PIN_LOCKED_UNTIL, None)
        ref = time.time() if now is None else now
        return max(0.0, float(until) - ref) if until is not None else 0.0

    def verify_pin(self, pin: str, *, now: float | None = None) -> bool:
        """True when ``pin`` is the manager PIN (False when none is set).

        After ``PIN_FREE_ATTEMPTS`` wrong PINs in a row, each further wrong one locks PIN
        entry for 30 s, doubling up to 15 min; a right PIN resets the count. The count is
        stored in the gallery, so restarting the app does not reset it.

        Raises:
            PinLockedError: while locked (``retry_after`` seconds remain); the PIN is not
                checked then.
        """
        ref = time.time() if now is None else now
        wait = self.pin_lockout_remaining(ref)
        if wait > 0:
            raise PinLockedError(
                f"Too many wrong PINs. Try again in {math.ceil(wait)} seconds.",
                "If the PIN is forgotten, whoever runs this computer's account can clear it "
                "with: facestyle gallery reset-pin", retry_after=wait)
        stored = self._stored_pin()
        if stored is None:
            return False
        if verify_pin(pin, stored):
            if self.get_setting(_PIN_FAILURES, 0):
                self._reset_pin_failures()
            return True
        failures = int(self.get_setting(_PIN_FAILURES, 0)) + 1
        self.set_setting(_PIN_FAILURES, failures)
        if failures >= PIN_FREE_ATTEMPTS:
            lock = min(PIN_MAX_LOCK_S, PIN_FIRST_LOCK_S * 2 ** (failures - PIN_FREE_ATTEMPTS))
            self.set_setting(_PIN_LOCKED_UNTIL, ref + lock)
            log.warning("%d wrong manager PINs in a row; PIN entry locked for %d s",
                        failures, lock)
        return False

    def _reset_pin_failures(self) -> None:
        self.set_setting(_PIN_FAILURES, None)
        self.set_setting(_PIN_LOCKED_UNTIL, None)

    def set_pin(self, new_pin: str, *, current_pin: str | None = None) -> None:
        """Set the manager PIN. Once one exists, ``current_pin`` must match it.

        Raises:
            PinError: the new PIN is too short/long, or ``current_pin`` is wrong.
        """
        if self.has_pin() and (current_pin is None or not self.verify_pin(current_pin)):
            raise PinError("The current PIN is wrong.", "Enter the PIN set when it was first used.")
        h = hash_pin(new_pin)  # slow (scrypt): outside the lock
        with self._write() as conn:
            conn.execute("INSERT INTO manager_pin(id, salt, hash, n, r, p, updated_at) "
                         "VALUES (1, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                         "salt = excluded.salt, hash = excluded.hash, n = excluded.n, "
                         "r = excluded.r, p = excluded.p, updated_at = excluded.updated_at",
                         (h.salt, h.hash, h.n, h.r, h.p, time.time()))
        self._reset_pin_failures()

    def clear_pin(self) -> None:
        """Remove the PIN (for a recovery command run by whoever owns the file)."""
        with self._write() as conn:
            conn.execute("DELETE FROM manager_pin")
        self._reset_pin_failures()
