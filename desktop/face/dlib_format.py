"""A reader for dlib's binary serialisation, in pure Python and numpy (no dlib at run time).

The primitives, as dlib writes them (``dlib/serialize.h``, ``dlib/float_details.h``,
``dlib/cuda/tensor.h``, ``dlib/matrix/matrix.h``):

* **integer**: one control byte, whose low 4 bits give the number of bytes that follow
  and whose bit 0x80 marks a negative number, then that many little-endian bytes of the
  magnitude. Unsigned integers use the same layout with no sign bit.
* **bool**: one ASCII byte, ``'1'`` or ``'0'``.
* **float/double** (outside tensors): two integers, a 64-bit mantissa then a 16-bit
  exponent, meaning ``mantissa * 2**exponent``; exponents 32000..32002 stand for +inf,
  -inf and NaN.
* **string**: an integer length, then the bytes.
* **std::vector**: an integer length, then the elements.
* **matrix**: rows and columns as integers (negated in the newer format), then the
  elements row by row, each a float as above.
* **tensor**: a version integer (2), then num_samples, k, nr and nc, then the values as raw
  little-endian float32.
* **alias_tensor** (a view's shape, no values): a version integer (1), then num_samples, k,
  nr and nc.
* **uint8_t** / char: one raw byte.

Network files and shape predictors are built from these; their layouts live in the
modules that load them. Every read checks bounds: a truncated or foreign file raises
:class:`DlibFormatError` with the byte offset and what was being read.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from desktop.errors import ModelFileError

T = TypeVar("T")

FLOAT_IS_INF = 32000
FLOAT_IS_NINF = 32001
FLOAT_IS_NAN = 32002


class DlibFormatError(ModelFileError):
    """The bytes are not what dlib's format says they should be (truncated or foreign)."""


class DlibReader:
    """Reads dlib-serialised values one after another from a bytes buffer.

    ``source`` names the buffer in error messages (usually the file path).
    """

    def __init__(self, data: bytes | bytearray | memoryview, source: str = "<bytes>") -> None:
        self.data = memoryview(data).cast("B")
        self.pos = 0
        self.source = source

    @classmethod
    def from_file(cls, path: str | Path) -> DlibReader:
        path = Path(path)
        try:
            return cls(path.read_bytes(), str(path))
        except OSError as exc:
            raise DlibFormatError(f"Cannot read {path}: {exc.strerror or exc}") from exc

    # -- bookkeeping -----------------------------------------------------------------
    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def error(self, what: str, detail: str = "") -> DlibFormatError:
        extra = f": {detail}" if detail else ""
        return DlibFormatError(
            f"{self.source}: unexpected data while reading {what} at byte {self.pos}{extra}."
        )

    def _take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.error(what, f"needs {n} bytes, {self.remaining} left (file truncated?)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    # -- primitives ------------------------------------------------------------------
    def int(self, what: str = "an integer") -> int:
        """A signed integer (dlib's control byte + little-endian magnitude)."""
        control = self._take(1, what)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise self.error(what, f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self._take(size, what), "little")
        return -value if control & 0x80 else value

    def uint(self, what: str = "an unsigned integer") -> int:
        """An unsigned integer: the same layout, and a negative sign is an error."""
        start = self.pos
        value = self.int(what)
        if value < 0:
            self.pos = start
            raise self.error(what, "negative value for an unsigned integer")
        return value

    def byte(self, what: str = "a byte") -> int:
        """A ``uint8_t`` or char: one raw byte (dlib does not pack these as integers)."""
        return self._take(1, what)[0]

    def bool(self, what: str = "a bool") -> bool:
        ch = self._take(1, what)[0]
        if ch not in (0x30, 0x31):
            self.pos -= 1
            raise self.error(what, f"bool byte {ch!r} is neither '0' nor '1'")
        return ch == 0x31

    def float(self, what: str = "a float") -> float:
        """A float or double: mantissa * 2**exponent (with dlib's inf/NaN codes)."""
        mantissa = self.int(what)
        exponent = self.int(what)
        if exponent < FLOAT_IS_INF:
            return math.ldexp(float(mantissa), exponent)
        if exponent == FLOAT_IS_INF:
            return math.inf
        if exponent == FLOAT_IS_NINF:
            return -math.inf
        return math.nan

    def string(self, what: str = "a string") -> str:
        length = self.uint(what)
        return bytes(self._take(length, what)).decode("latin-1")

    def expect_string(self, *expected: str) -> str:
        """Read a string and check it is one of ``expected`` (e.g. a layer version tag)."""
        start = self.pos
        found = self.string(f"one of {', '.join(expected)}")
        if found not in expected:
            self.pos = start
            raise self.error(f"one of {', '.join(expected)}", f"found {found!r}")
        return found

    def peek_string(self, max_length: int = 256) -> str | None:
        """The string at the current position without consuming it, or None when the
        bytes there do not read as a string of at most ``max_length`` printable characters.
        Used to find where a run of integers ends and a named object begins."""
        start = self.pos
        try:
            length = self.uint()
            if length > max_length:
                return None
            raw = bytes(self._take(length, "a string"))
        except DlibFormatError:
            return None
        finally:
            self.pos = start
        text = raw.decode("latin-1")
        return text if raw.isascii() and text.isprintable() else None

    def vector(self, element: Callable[[], T], what: str = "a vector") -> list[T]:
        """A std::vector: a length, then ``element()`` that many times."""
        return [element() for _ in range(self.uint(what))]

    def _versioned_shape(self, kind: str, version: int, what: str) -> tuple[int, int, int, int]:
        """A version integer that must equal ``version``, then four non-negative sizes."""
        found = self.int(what)
        if found != version:
            raise self.error(what, f"{kind} version {found}, expected {version}")
        shape = tuple(self.int(what) for _ in range(4))
        if any(s < 0 for s in shape):
            raise self.error(what, f"negative {kind} shape {shape}")
        return shape  # type: ignore[return-value]

    def tensor(self, what: str = "a tensor") -> np.ndarray:
        """A dlib tensor as a float32 array of shape (num_samples, k, nr, nc)."""
        shape = self._versioned_shape("tensor", 2, what)
        raw = self._take(4 * math.prod(shape), what)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(self, what: str = "an alias tensor") -> tuple[int, int, int, int]:
        """A dlib alias_tensor: only a shape (num_samples, k, nr, nc), no values."""
        return self._versioned_shape("alias_tensor", 1, what)

    def floats(self, count: int, what: str = "floats") -> np.ndarray:
        """``count`` floats one after another (each as :meth:`float` reads it), as a
        float64 array. Vectorised: one pass finds where each integer starts (its control
        byte gives its length), then numpy decodes them all; the result is the same as
        calling :meth:`float` ``count`` times, several times faster."""
        starts: list[int] = []
        self._number_starts(2 * count, starts, what)
        return self._decode_floats(starts, what)

    def matrix(self, what: str = "a matrix") -> np.ndarray:
        """A dlib matrix of floats as a float64 (rows, cols) array."""
        rows = abs(self.int(what))
        cols = abs(self.int(what))
        return self.floats(rows * cols, what).reshape(rows, cols)

    def matrices(self, count: int, what: str = "matrices") -> list[np.ndarray]:
        """``count`` matrices one after another (as :meth:`matrix` reads them), decoded
        together: much faster than one at a time for many small matrices."""
        shapes, starts = [], []
        for _ in range(count):
            shape = (abs(self.int(what)), abs(self.int(what)))
            shapes.append(shape)
            self._number_starts(2 * shape[0] * shape[1], starts, what)
        values = self._decode_floats(starts, what)
        out, k = [], 0
        for rows, cols in shapes:
            out.append(values[k:k + rows * cols].reshape(rows, cols))
            k += rows * cols
        return out

    def _number_starts(self, count: int, starts: list[int], what: str) -> None:
        """Append where each of the next ``count`` integers starts, and move past them."""
        data, pos = self.data, self.pos
        append = starts.append
        try:
            for _ in range(count):
                append(pos)
                pos += 1 + (data[pos] & 0x0F)
        except IndexError:
            raise self.error(what, "the file ends inside a number (truncated?)") from None
        if pos > len(data):
            raise self.error(what, "the file ends inside a number (truncated?)")
        self.pos = pos

    def _decode_floats(self, starts: list[int], what: str) -> np.ndarray:
        """The floats whose integers (mantissa, exponent pairs) start at ``starts``."""
        if not starts:
            return np.zeros(0, np.float64)
        end = len(self.data)
        raw = np.frombuffer(self.data, np.uint8)
        at = np.asarray(starts, np.int64)
        control = raw[at]
        size = control & 0x0F
        bad = (size == 0) | (size > 8) | (control & 0x70 != 0)
        if bad.any():
            self.pos = int(at[np.argmax(bad)])
            raise self.error(what, f"bad integer control byte 0x{control[bad][0]:02x}")
        lanes = np.arange(8)
        body = raw[np.minimum(at[:, None] + 1 + lanes, end - 1)].astype(np.uint64)
        body[lanes >= size[:, None]] = 0
        magnitude = (body << (8 * lanes).astype(np.uint64)).sum(axis=1, dtype=np.uint64)
        negative = (control & 0x80) != 0
        mantissa = magnitude[0::2].astype(np.float64)
        mantissa[negative[0::2]] *= -1
        exponent = magnitude[1::2].astype(np.int64)
        exponent[negative[1::2]] *= -1
        special = exponent >= FLOAT_IS_INF
        values = np.ldexp(mantissa, np.where(special, 0, exponent))
        if special.any():
            values[exponent == FLOAT_IS_INF] = math.inf
            values[exponent == FLOAT_IS_NINF] = -math.inf
            values[exponent == FLOAT_IS_NAN] = math.nan
        return values


# -- writers, for tests and fixtures --------------------------------------------------
def encode_int(value: int) -> bytes:
    """dlib's encoding of an integer (the inverse of :meth:`DlibReader.int`)."""
    magnitude = abs(int(value))
    body = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    if len(body) > 8:
        raise ValueError("dlib integers are at most 8 bytes")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def encode_float(value: float) -> bytes:
    """dlib's encoding of a float as mantissa * 2**exponent (53-bit mantissa)."""
    if math.isnan(value):
        return encode_int(0) + encode_int(FLOAT_IS_NAN)
    if math.isinf(value):
        return encode_int(0) + encode_int(FLOAT_IS_INF if value > 0 else FLOAT_IS_NINF)
    fraction, exponent = math.frexp(value)
    mantissa = int(fraction * (1 << 53))
    exponent -= 53
    while mantissa and mantissa & 0xFF == 0:
        mantissa >>= 8
        exponent += 8
    return encode_int(mantissa) + encode_int(exponent)


def encode_string(value: str) -> bytes:
    raw = value.encode("latin-1")
    return encode_int(len(raw)) + raw


def encode_bool(value: bool) -> bytes:
    return b"1" if value else b"0"


def encode_alias_tensor(shape: tuple[int, int, int, int]) -> bytes:
    return encode_int(1) + b"".join(encode_int(s) for s in shape)


def encode_tensor(array: np.ndarray) -> bytes:
    arr = np.asarray(array, dtype="<f4")
    shape = (1,) * (4 - arr.ndim) + arr.shape if arr.ndim < 4 else arr.shape
    return encode_int(2) + b"".join(encode_int(s) for s in shape) + arr.tobytes()
