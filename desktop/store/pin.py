"""Manager PIN hashing: scrypt with a random salt, compared in constant time.

Only ``(salt, scrypt(PIN, salt), n, r, p)`` is stored, never the PIN. scrypt's cost
parameters are stored with each hash so they can be raised later without breaking
existing PINs. n = 2^14, r = 8, p = 1 (16 MB, ~50 ms on a laptop core) makes guessing a
stolen 4-6 digit PIN offline slower, although a short PIN remains guessable by anyone
holding the database file: the file's owner-only permissions are the first defence.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from desktop.store.errors import PinError

MIN_PIN_LENGTH = 4
MAX_PIN_LENGTH = 64
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32


@dataclass(frozen=True)
class PinHash:
    salt: bytes
    hash: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P


def _derive(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=256 * 1024 * 1024, dklen=HASH_BYTES)


def validate_pin(pin: str) -> str:
    """Check a new PIN's length; returns it unchanged or raises :class:`PinError`."""
    if not isinstance(pin, str):
        raise PinError("The PIN must be text.")
    if len(pin) < MIN_PIN_LENGTH:
        raise PinError(f"The PIN must have at least {MIN_PIN_LENGTH} characters.")
    if len(pin) > MAX_PIN_LENGTH:
        raise PinError(f"The PIN must have at most {MAX_PIN_LENGTH} characters.")
    return pin


def hash_pin(pin: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> PinHash:
    """A new salted scrypt hash of ``pin`` (validated first)."""
    validate_pin(pin)
    salt = secrets.token_bytes(SALT_BYTES)
    return PinHash(salt, _derive(pin, salt, n, r, p), n, r, p)


def verify_pin(pin: str, stored: PinHash) -> bool:
    """True when ``pin`` hashes to ``stored`` (constant-time comparison)."""
    if not isinstance(pin, str) or len(pin) > MAX_PIN_LENGTH:
        return False
    candidate = _derive(pin, stored.salt, stored.n, stored.r, stored.p)
    return hmac.compare_digest(candidate, stored.hash)
