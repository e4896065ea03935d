"""dlib DNN network files (the face encoder and the MMOD face detector), read without dlib.

A network file is one ``add_loss_layer`` written by dlib's ``serialize``
(``dlib/dnn/core.h``). Because every layer serialises its sub-network *before* its own
details, the file reads from the outside in and then from the input out:

1. the loss layer's version (1) and details: ``loss_metric_2`` with its margin and distance
   threshold, or ``loss_mmod_`` with its detector windows and NMS overlap test;
2. a run of nesting version integers, outermost first: 2 for each ``add_layer``
   (3 for the one sitting on the input), 1 for each tag or skip;
3. the input layer: ``input_rgb_image_sized`` (channel means, then rows and columns) or
   ``input_rgb_image_pyramid`` (channel means, then tile padding in its newer version);
4. each layer's details from the input outwards (``con_4``, ``affine_``, ``relu_``,
   ``max_pool_2``, ``avg_pool_2``, ``add_prev_``, ``fc_2`` and newer versions of these),
   each followed by the ``add_layer``'s bookkeeping: three bools and the (usually empty)
   ``x_grad``, ``cached_output`` and ``params_grad`` tensors.

Tags and skips have no details, so the residual wiring cannot be read from the file. The
definitions below spell out the two networks exactly as dlib's examples do
(``examples/dnn_face_recognition_ex.cpp`` and ``examples/dnn_mmod_face_detection_ex.cpp``)
and :func:`pair` checks the file against them: the nesting run, every layer's kind, shape,
stride and padding.

Arrays are converted to torch's layouts on the way in: convolution filters
(out, in, rows, cols), fully connected weights (out, in), per-channel affine gamma/beta (C,).
Batch norm layers saved as ``bn_con2`` are folded into an affine layer as dlib does.

:func:`load_network` parses a file once and keeps the converted arrays in the user cache
folder (torch tensors, keyed by the file's SHA-256), so later starts skip the parse.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from desktop.errors import ModelFileError
from desktop.face.dlib_format import DlibFormatError, DlibReader
from desktop.model_files import all_model_files, reinstall_hint

log = logging.getLogger(__name__)

#: Bump when the cached layout changes; old cache files are then simply not found.
CACHE_FORMAT = 1
CONV_MODE, FC_MODE = 0, 1
FC_HAS_BIAS, FC_NO_BIAS = 0, 1


# ------------------------------------------------------------------------------------------
# What a file holds
# ------------------------------------------------------------------------------------------
@dataclass
class Layer:
    """One computational layer (an ``add_layer``'s details), input side first.

    ``kind`` is one of ``con``, ``affine``, ``relu``, ``max_pool``, ``avg_pool``,
    ``add_prev``, ``fc``; ``fields`` holds the integers (``num_filters``, ``nr``, ``nc``,
    ``stride``, ``padding``, ``num_outputs``...), ``arrays`` the float32 weights in torch
    layouts (``weight``, ``bias``, ``gamma``, ``beta``).
    """

    kind: str
    version: str
    fields: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def describe(self) -> str:
        keys = ("num_filters", "num_outputs", "nr", "nc", "stride", "padding")
        shown = ", ".join(f"{k}={self.fields[k]}" for k in keys if k in self.fields)
        return f"{self.kind}({shown})" if shown else self.kind


@dataclass
class Network:
    """A parsed dlib network file: loss details, input layer and layers, input side first."""

    source: str
    loss: dict[str, Any]
    input: dict[str, Any]
    nesting: list[int]
    layers: list[Layer]

    def parametrised(self) -> list[Layer]:
        """The layers that carry weights (con, affine, fc), input side first."""
        return [layer for layer in self.layers if layer.arrays]

    # -- cache form: plain containers of str/int/float/tuple and torch tensors -------------
    def to_state(self) -> dict[str, Any]:
        import torch

        return {
            "format": CACHE_FORMAT,
            "source": self.source,
            "loss": self.loss,
            "input": self.input,
            "nesting": list(self.nesting),
            "layers": [
                {
                    "kind": layer.kind,
                    "version": layer.version,
                    "fields": layer.fields,
                    "arrays": {k: torch.from_numpy(v.copy()) for k, v in layer.arrays.items()},
                }
                for layer in self.layers
            ],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Network:
        if state.get("format") != CACHE_FORMAT:
            raise ValueError(f"cache format {state.get('format')!r}, expected {CACHE_FORMAT}")
        layers = [
            Layer(
                item["kind"],
                item["version"],
                dict(item["fields"]),
                {k: v.numpy().astype(np.float32, copy=False) for k, v in item["arrays"].items()},
            )
            for item in state["layers"]
        ]
        return cls(state["source"], dict(state["loss"]), dict(state["input"]),
                   list(state["nesting"]), layers)


# ------------------------------------------------------------------------------------------
# Parsing
# ------------------------------------------------------------------------------------------
def _read_loss(r: DlibReader) -> dict[str, Any]:
    version = r.int("the loss layer version")
    if version != 1:
        raise r.error("the loss layer version", f"found {version}, expected 1")
    name = r.expect_string("loss_metric_", "loss_metric_2", "loss_mmod_")
    if name == "loss_metric_":  # margin and threshold were hard coded then
        return {"name": name, "margin": 0.1, "distance_threshold": 0.75}
    if name == "loss_metric_2":
        return {"name": name, "margin": r.float("the metric loss margin"),
                "distance_threshold": r.float("the metric loss distance threshold")}
    return {"name": name, **_read_mmod_options(r)}


def _read_mmod_options(r: DlibReader) -> dict[str, Any]:
    what = "the MMOD detector options"
    version = r.int(what)
    if not 1 <= version <= 4:
        raise r.error(what, f"options version {version}, expected 1 to 4")
    if version == 1:
        windows = [(r.uint(what), r.uint(what), "")]
    else:
        def window() -> tuple[int, int, str]:
            v = r.int("a detector window")
            if v not in (1, 2):
                raise r.error("a detector window", f"version {v}")
            w, h = r.uint("a detector window"), r.uint("a detector window")
            return (w, h, r.string("a detector window label") if v == 2 else "")

        windows = r.vector(window, "the detector windows")
    opts: dict[str, Any] = {
        "detector_windows": [tuple(w) for w in windows],
        "loss_per_false_alarm": r.float(what),
        "loss_per_missed_target": r.float(what),
        "truth_match_iou_threshold": r.float(what),
        "nms_iou_threshold": r.float(what),
        "nms_percent_covered_threshold": r.float(what),
        "ignore_iou_threshold": r.float(what),
        "ignore_percent_covered_threshold": r.float(what),
        "assume_image_pyramid": True,
        "use_bounding_box_regression": False,
    }
    if version >= 3:
        opts["assume_image_pyramid"] = r.byte(what) != 0
    if version >= 4:
        opts["use_bounding_box_regression"] = r.bool(what)
        opts["bbr_lambda"] = r.float(what)
    return opts


def _read_input(r: DlibReader) -> dict[str, Any]:
    name = r.expect_string(
        "input_rgb_image_sized", "input_rgb_image_pyramid", "input_rgb_image_pyramid2"
    )
    mean = tuple(r.float(f"the {name} channel means") for _ in range(3))
    out: dict[str, Any] = {"name": name, "mean": mean}
    if name == "input_rgb_image_sized":
        out["size"] = (r.uint("the input rows"), r.uint("the input columns"))
    elif name == "input_rgb_image_pyramid2":
        out["pyramid_padding"] = r.uint("the pyramid padding")
        out["pyramid_outer_padding"] = r.uint("the pyramid outer padding")
    else:  # the first version had these fixed
        out["pyramid_padding"], out["pyramid_outer_padding"] = 10, 11
    return out


def _split(params: np.ndarray, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    flat = params.reshape(-1)
    sizes = [math.prod(s) for s in shapes]
    if sum(sizes) != flat.size:
        raise ValueError(f"{flat.size} parameters for shapes {shapes}")
    out, start = [], 0
    for shape, size in zip(shapes, sizes, strict=True):
        out.append(flat[start : start + size].reshape(shape))
        start += size
    return out


def _multipliers(r: DlibReader, what: str) -> None:
    for _ in range(4):  # learning-rate and weight-decay multipliers: training only
        r.float(what)


def _read_con(r: DlibReader, version: str) -> Layer:
    what = f"a {version} layer"
    params = r.tensor(what)
    f: dict[str, Any] = {"num_filters": r.int(what), "nr": r.int(what), "nc": r.int(what)}
    f["stride"] = (r.int(what), r.int(what))
    f["padding"] = (r.int(what), r.int(what))
    filters = r.alias_tensor(what)
    biases = r.alias_tensor(what)
    _multipliers(r, what)
    use_bias = r.bool(what) if version in ("con_5", "con_6") else True
    if version == "con_6":
        f["use_relu"] = r.bool(what)
    try:
        weight, bias = _split(params, filters, (biases[1],))
    except ValueError as exc:
        raise r.error(what, str(exc)) from exc
    arrays = {"weight": weight}
    if use_bias:
        arrays["bias"] = bias
    return Layer("con", version, f, arrays)


def _read_affine(r: DlibReader, version: str) -> Layer:
    what = f"an {version} layer"
    params = r.tensor(what)
    gamma_shape = r.alias_tensor(what)
    beta_shape = r.alias_tensor(what)
    mode = r.int(what)
    disabled = r.bool(what) if version == "affine_2" else False
    try:
        gamma, beta = _split(params, gamma_shape, beta_shape)
    except ValueError as exc:
        raise r.error(what, str(exc)) from exc
    return Layer("affine", version, {"mode": mode, "disabled": disabled},
                 {"gamma": gamma.reshape(-1), "beta": beta.reshape(-1)})


def _read_bn_as_affine(r: DlibReader, version: str) -> Layer:
    """A batch norm layer, folded to dlib's affine form: gamma/sqrt(var+eps), beta-mean*g."""
    what = f"a {version} layer"
    params = r.tensor(what)
    gamma_shape, beta_shape = r.alias_tensor(what), r.alias_tensor(what)
    for _ in range(2):  # means, invstds of the last training batch
        r.tensor(what)
    running_mean, running_var = r.tensor(what), r.tensor(what)
    r.uint(what), r.uint(what)  # num_updates, running_stats_window_size
    _multipliers(r, what)
    eps = r.float(what)
    gamma, beta = _split(params, gamma_shape, beta_shape)
    g = gamma.reshape(-1) / np.sqrt(running_var.reshape(-1) + eps)
    b = beta.reshape(-1) - g * running_mean.reshape(-1)
    mode = CONV_MODE if version == "bn_con2" else FC_MODE
    return Layer("affine", version, {"mode": mode, "disabled": False},
                 {"gamma": g.astype(np.float32), "beta": b.astype(np.float32)})


def _read_pool(kind: str) -> Callable[[DlibReader, str], Layer]:
    def read(r: DlibReader, version: str) -> Layer:
        what = f"a {version} layer"
        f = {"nr": r.int(what), "nc": r.int(what)}
        f["stride"] = (r.int(what), r.int(what))
        f["padding"] = (r.int(what), r.int(what))
        return Layer(kind, version, f)

    return read


def _read_fc(r: DlibReader, version: str) -> Layer:
    what = f"an {version} layer"
    num_outputs, num_inputs = r.uint(what), r.uint(what)
    params = r.tensor(what)
    weights, biases = r.alias_tensor(what), r.alias_tensor(what)
    bias_mode = r.int(what)
    _multipliers(r, what)
    if version == "fc_3":
        r.bool(what)  # use_bias
    shapes = [weights] + ([biases] if bias_mode == FC_HAS_BIAS else [])
    try:
        parts = _split(params, *shapes)
    except ValueError as exc:
        raise r.error(what, str(exc)) from exc
    # dlib computes x @ W with W of shape (num_inputs, num_outputs); torch wants W^T.
    arrays = {"weight": np.ascontiguousarray(parts[0].reshape(num_inputs, num_outputs).T)}
    if bias_mode == FC_HAS_BIAS:
        arrays["bias"] = parts[1].reshape(-1)
    return Layer("fc", version, {"num_outputs": num_outputs, "num_inputs": num_inputs,
                                 "bias": bias_mode == FC_HAS_BIAS}, arrays)


def _read_relu(r: DlibReader, version: str) -> Layer:
    disabled = r.bool(f"a {version} layer") if version == "relu_2" else False
    return Layer("relu", version, {"disabled": disabled})


_LAYER_READERS: dict[str, Callable[[DlibReader, str], Layer]] = {
    "con_4": _read_con, "con_5": _read_con, "con_6": _read_con,
    "affine_": _read_affine, "affine_2": _read_affine,
    "bn_con2": _read_bn_as_affine, "bn_fc2": _read_bn_as_affine,
    "relu_": _read_relu, "relu_2": _read_relu,
    "max_pool_2": _read_pool("max_pool"),
    "avg_pool_2": _read_pool("avg_pool"),
    "add_prev_": lambda r, version: Layer("add_prev", version),
    "fc_2": _read_fc, "fc_3": _read_fc,
}


def _read_layer(r: DlibReader, on_input: bool, input_version: int) -> Layer:
    version = r.expect_string(*_LAYER_READERS)
    layer = _LAYER_READERS[version](r, version)
    what = f"the bookkeeping after a {version} layer"
    for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, output disabled
        r.bool(what)
    r.tensor(what)  # x_grad
    r.tensor(what)  # cached_output
    r.tensor(what)  # params_grad, or grad_final for the layer on the input
    if on_input and input_version >= 3:
        r.int(what)  # _sample_expansion_factor
    return layer


def parse_network(data: bytes, source: str = "<bytes>") -> Network:
    """Parse a dlib network file's bytes (see the module docstring for the layout).

    Raises:
        DlibFormatError: truncated or not a dlib network file (message names ``source``).
    """
    r = DlibReader(data, source)
    loss = _read_loss(r)
    nesting: list[int] = []
    while not (r.peek_string() or "").startswith("input_"):
        value = r.int("the network's nesting versions")
        if value not in (1, 2, 3):
            raise r.error("the network's nesting versions", f"found {value}")
        nesting.append(value)
        if len(nesting) > 10_000:
            raise r.error("the network's nesting versions", "no input layer found")
    if not nesting:
        raise r.error("the network's nesting versions", "the file has no layers")
    net_input = _read_input(r)
    layers = [_read_layer(r, on_input=True, input_version=nesting[-1])]
    while not r.at_end():
        layers.append(_read_layer(r, on_input=False, input_version=0))
    return Network(source, loss, net_input, nesting, layers)


# ------------------------------------------------------------------------------------------
# Network definitions, as dlib's examples write them (innermost argument = input side)
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Op:
    """One element of a definition: a layer (with what the file must say), a tag or a skip."""

    kind: str
    fields: tuple[tuple[str, Any], ...] = ()

    @property
    def is_layer(self) -> bool:
        return self.kind not in ("tag", "skip")

    def expect(self) -> dict[str, Any]:
        return dict(self.fields)


Definition = list[Op]


def _then(subnet: Definition, *ops: Op) -> Definition:
    return [*subnet, *ops]


def con(num_filters: int, nr: int, nc: int, stride_y: int, stride_x: int,
        subnet: Definition) -> Definition:
    """dlib's con<>: padding defaults to nr/2 when the stride is 1, else 0."""
    padding = (nr // 2 if stride_y == 1 else 0, nc // 2 if stride_x == 1 else 0)
    return _then(subnet, Op("con", (("num_filters", num_filters), ("nr", nr), ("nc", nc),
                                    ("stride", (stride_y, stride_x)), ("padding", padding))))


def affine(subnet: Definition) -> Definition:
    return _then(subnet, Op("affine"))


def relu(subnet: Definition) -> Definition:
    return _then(subnet, Op("relu"))


def _pool(kind: str, nr: int, nc: int, stride_y: int, stride_x: int,
          subnet: Definition) -> Definition:
    padding = (nr // 2 if stride_y == 1 else 0, nc // 2 if stride_x == 1 else 0)
    return _then(subnet, Op(kind, (("nr", nr), ("nc", nc), ("stride", (stride_y, stride_x)),
                                   ("padding", padding))))


def max_pool(nr: int, nc: int, stride_y: int, stride_x: int, subnet: Definition) -> Definition:
    return _pool("max_pool", nr, nc, stride_y, stride_x, subnet)


def avg_pool(nr: int, nc: int, stride_y: int, stride_x: int, subnet: Definition) -> Definition:
    return _pool("avg_pool", nr, nc, stride_y, stride_x, subnet)


def avg_pool_everything(subnet: Definition) -> Definition:
    return _pool("avg_pool", 0, 0, 1, 1, subnet)


def fc_no_bias(num_outputs: int, subnet: Definition) -> Definition:
    return _then(subnet, Op("fc", (("num_outputs", num_outputs), ("bias", False))))


def tag(n: int, subnet: Definition) -> Definition:
    return _then(subnet, Op("tag", (("id", n),)))


def skip(n: int, subnet: Definition) -> Definition:
    return _then(subnet, Op("skip", (("id", n),)))


def add_prev(n: int, subnet: Definition) -> Definition:
    return _then(subnet, Op("add_prev", (("tag", n),)))


def input_layer(name: str) -> Definition:
    return []


# dnn_face_recognition_ex.cpp -------------------------------------------------------------
def block(n: int, stride: int, subnet: Definition) -> Definition:
    """BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>> with BN = affine."""
    return affine(con(n, 3, 3, 1, 1, relu(affine(con(n, 3, 3, stride, stride, subnet)))))


def residual(n: int, subnet: Definition) -> Definition:
    """add_prev1<block<N,BN,1,tag1<SUBNET>>>"""
    return add_prev(1, block(n, 1, tag(1, subnet)))


def residual_down(n: int, subnet: Definition) -> Definition:
    """add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,BN,2,tag1<SUBNET>>>>>>"""
    return add_prev(2, avg_pool(2, 2, 2, 2, skip(1, tag(2, block(n, 2, tag(1, subnet))))))


def ares(n: int, subnet: Definition) -> Definition:
    return relu(residual(n, subnet))


def ares_down(n: int, subnet: Definition) -> Definition:
    return relu(residual_down(n, subnet))


def alevel0(s: Definition) -> Definition:
    return ares_down(256, s)


def alevel1(s: Definition) -> Definition:
    return ares(256, ares(256, ares_down(256, s)))


def alevel2(s: Definition) -> Definition:
    return ares(128, ares(128, ares_down(128, s)))


def alevel3(s: Definition) -> Definition:
    return ares(64, ares(64, ares(64, ares_down(64, s))))


def alevel4(s: Definition) -> Definition:
    return ares(32, ares(32, ares(32, s)))


#: anet_type of dnn_face_recognition_ex.cpp (loss_metric on top).
ENCODER_DEFINITION: Definition = fc_no_bias(128, avg_pool_everything(
    alevel0(alevel1(alevel2(alevel3(alevel4(
        max_pool(3, 3, 2, 2, relu(affine(con(32, 7, 7, 2, 2,
            input_layer("input_rgb_image_sized<150>")))))
    )))))
))


# dnn_mmod_face_detection_ex.cpp ----------------------------------------------------------
def con5d(n: int, subnet: Definition) -> Definition:
    return con(n, 5, 5, 2, 2, subnet)


def con5(n: int, subnet: Definition) -> Definition:
    return con(n, 5, 5, 1, 1, subnet)


def downsampler(s: Definition) -> Definition:
    return relu(affine(con5d(32, relu(affine(con5d(32, relu(affine(con5d(16, s)))))))))


def rcon5(s: Definition) -> Definition:
    return relu(affine(con5(45, s)))


#: net_type of dnn_mmod_face_detection_ex.cpp (loss_mmod on top).
DETECTOR_DEFINITION: Definition = con(1, 9, 9, 1, 1, rcon5(rcon5(rcon5(downsampler(
    input_layer("input_rgb_image_pyramid<pyramid_down<6>>"))))))


# ------------------------------------------------------------------------------------------
# Pairing a file with a definition
# ------------------------------------------------------------------------------------------
def expected_nesting(definition: Definition) -> list[int]:
    """The nesting run dlib writes for ``definition``, outermost first (input layer's = 3)."""
    run = [2 if op.is_layer else 1 for op in reversed(definition)]
    run[-1] = 3
    return run


def pair(network: Network, definition: Definition, loss: str, input_name: str) -> Network:
    """Check that ``network`` is the network ``definition`` spells out, or raise.

    Checks the loss and input layer names, the nesting run (tags and skips where the
    definition has them), and each layer's kind and fields (filters, sizes, strides,
    padding, outputs). Returns ``network`` unchanged.

    Raises:
        DlibFormatError: naming the file and the first mismatch.
    """

    def fail(detail: str) -> DlibFormatError:
        return DlibFormatError(f"{network.source} is not the expected network: {detail}.")

    if not network.loss["name"].startswith(loss):
        raise fail(f"its loss layer is {network.loss['name']}, expected {loss}")
    if not network.input["name"].startswith(input_name):
        raise fail(f"its input layer is {network.input['name']}, expected {input_name}")
    want = expected_nesting(definition)
    got = list(network.nesting)
    if got[-1] == 2:  # files written before dlib 19.5 had version 2 on the input side
        got[-1] = 3
    if got != want:
        raise fail(f"its layer nesting ({len(got)} levels) differs from the definition "
                   f"({len(want)} levels)")
    layer_ops = [op for op in definition if op.is_layer]
    if len(layer_ops) != len(network.layers):
        raise fail(f"it has {len(network.layers)} layers, expected {len(layer_ops)}")
    for i, (op, layer) in enumerate(zip(layer_ops, network.layers, strict=True)):
        if op.kind != layer.kind:
            raise fail(f"layer {i} is {layer.describe()}, expected {op.kind}")
        for key, value in op.expect().items():
            if key == "tag":
                continue
            if layer.fields.get(key) != value:
                raise fail(f"layer {i} is {layer.describe()}, expected {key}={value}")
        if layer.kind in ("relu", "affine") and layer.fields.get("disabled"):
            raise fail(f"layer {i} ({layer.kind}) is disabled")
    return network


# ------------------------------------------------------------------------------------------
# Loading with a cache
# ------------------------------------------------------------------------------------------
def _package_hint(path: Path) -> str:
    for model in all_model_files():
        if model.name == path.name:
            return reinstall_hint(model.package)
    return reinstall_hint("face_recognition_models")


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def cache_path(path: Path, sha256: str) -> Path:
    """Where the converted tensors of the network file ``path`` (with this hash) are kept."""
    from desktop.paths import user_dirs

    return user_dirs().cache / "dlib-nets" / f"{path.stem}-{sha256[:24]}-v{CACHE_FORMAT}.pt"


def _load_cached(cache: Path, path: Path) -> Network | None:
    import torch

    if not cache.is_file():
        return None
    try:
        network = Network.from_state(torch.load(cache, map_location="cpu", weights_only=True))
    except Exception as exc:  # a corrupt or foreign cache file is rebuilt, never trusted
        log.warning("ignoring unreadable cache %s (%s); parsing %s again", cache, exc, path)
        return None
    network.source = str(path)
    return network


def _save_cache(network: Network, cache: Path) -> None:
    import torch

    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=cache.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            torch.save(network.to_state(), fh)
        os.replace(tmp, cache)
    except OSError as exc:  # a read-only cache folder costs a re-parse next time, no more
        log.warning("could not write the weights cache %s: %s", cache, exc)


def load_network(
    path: str | os.PathLike[str],
    definition: Definition,
    loss: str,
    input_name: str,
    use_cache: bool = True,
) -> Network:
    """Parse the network file at ``path``, check it against ``definition`` and return it.

    With ``use_cache``, the converted tensors are read from (or written to) the user cache
    folder, keyed by the file's SHA-256; a corrupt cache file is ignored and rebuilt.

    Raises:
        ModelFileError: missing, unreadable, truncated or unexpected file; the message names
            the file, the hint names the package that ships it and how to reinstall it.
    """
    path = Path(path)
    hint = _package_hint(path)
    if not path.is_file():
        raise ModelFileError(f"Model file {path} was not found.", hint)
    try:
        sha = file_sha256(path) if use_cache else ""
        cache = cache_path(path, sha) if use_cache else None
        network = _load_cached(cache, path) if cache else None
        if network is None:
            network = parse_network(path.read_bytes(), str(path))
            pair(network, definition, loss, input_name)
            if cache is not None:
                _save_cache(network, cache)
        else:
            pair(network, definition, loss, input_name)
    except DlibFormatError as exc:
        raise ModelFileError(exc.message, hint) from exc
    except OSError as exc:
        raise ModelFileError(f"Cannot read model file {path}: {exc.strerror or exc}",
                             hint) from exc
    return network
