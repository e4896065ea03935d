"""The style-transfer loop: optimise the image G, yielding after every iteration.

:func:`stylize` is a generator. Per job it

1. checks the inputs and settings and plans the job (:func:`plan_job`: G's size, the
   coarse-to-fine scales, the layers, a memory check);
2. builds VGG19 only down to the deepest layer the losses use, in the chosen precision;
3. computes the content and style targets once (per scale);
4. evaluates J and dJ/dG once at the initial G, then iterates. **One iteration** is one
   optimiser update followed by one evaluation (forward + backward) of the new G. For
   L-BFGS without line search (neural-style's setting) this is the same count as
   function evaluations, except that a step which raised J is halved and evaluated again
   (up to ``MAX_RETREATS`` times, inside the same iteration; rare after the first few
   iterations); for Adam it is one Adam step. Each yielded
   :class:`~desktop.style.settings.IterationReport` holds the new G and *its* loss terms,
   so image and numbers always belong together. After every update G is clamped back
   to valid pixel values (0..255), so the image shown and saved is the one optimised.

Between iterations ``cancel.checkpoint()`` blocks while the job is paused and raises
:class:`~desktop.errors.Cancelled` once it is stopped. L-BFGS may end a scale early when
it can no longer descend (converged); the job then moves on (reports stop early).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from desktop.errors import FacestyleError
from desktop.style import images as imgs
from desktop.style.lbfgs import LBFGS
from desktop.style.losses import Objective, build_objective, style_gram_target
from desktop.style.memory import available_bytes, format_bytes, job_bytes
from desktop.style.precision import Precision, features, prepare_network, resolve
from desktop.style.scratch import Scratch
from desktop.style.settings import IterationReport, StyleSettings
from desktop.style.temporal import TemporalTerm
from desktop.style.vgg import (
    CAFFE_MEAN_BGR,
    FEATURE_LAYERS,
    POOLINGS,
    VGG19Features,
    deepest_layer,
    deprocess,
    downsampling,
    layer_shape,
    preprocess,
)
from desktop.tasks import CancelToken

#: Largest G (longest side, pixels) a job may ask for; larger sizes are capped.
MAX_SIZE = 2048
#: Smallest G (longest side, pixels).
MIN_SIZE = 32
#: Coarse-to-fine: the coarsest scale's longest side is at least this.
MIN_SCALE_SIZE = 128
#: Coarse-to-fine: the share of the iterations each coarser scale gets (the finest gets
#: the rest): 20 each of the default 300. The number of full-size iterations a job needs
#: hardly depends on how far the coarse scales went, but a coarse iteration is not as
#: cheap as its pixels say (on 2 AVX2 cores 128 px costs 1/8 and 256 px 0.4 of a 512 px
#: one). Measured, bf16, tubingen + starry_night at 512 px, full-size iterations until J
#: reaches the 300-iteration reference's (G upsampled as :func:`upsample_g` does), after
#: 128/256 px iterations 5/20: 83, 10/20: 85, 20/20: 86, 20/10: 87, 40/40: 84; 256 px
#: alone, 20: 84, 40: 80. Twenty at 128 px keep a stylised G changing on screen from
#: about a second after Start until the slower iterations begin.
COARSE_SHARE = 1 / 15
#: L-BFGS's first step at each scale moves the most-pushed pixel by this many grey levels
#: (steepest descent; see :mod:`desktop.style.lbfgs`). Measured, tubingen + starry_night at
#: 512 px, bf16: with 10 instead of 1, J after the 128 px scale's 3rd iteration is 2.9e13
#: instead of 1.0e14 (a stylised G on screen an iteration or two sooner, which on 2 AVX2
#: cores is about half a second), and the full-size iterations to the reference's J are 84
#: instead of 86 (``bench/style_schedules.py``); 30 needed a retreat at the 2nd iteration.
LBFGS_FIRST_STEP = 10.0
#: L-BFGS history (pairs kept). neural-style keeps 100, scipy's L-BFGS-B (Gatys et al.'s
#: optimiser) 10. Measured on tubingen + starry_night, 256 px, 200 iterations: 50 reaches
#: the same J as 100 (within 0.1%), 20 is 1.4% worse; each pair costs 2 vectors of 3 H W
#: floats in memory and 4 passes over them per iteration, so 100 would add about a quarter
#: to the iteration time at 512 px (50: an eighth) and 630 MB (50: 315 MB).
LBFGS_HISTORY = 50
#: Most times an L-BFGS step that raised J is halved (each costs one more evaluation).
MAX_RETREATS = 6
#: Standard deviation of the noise init, in 0..255 pixel units.
NOISE_STD = 64.0
#: "J stopped improving" (``StyleSettings.stop_when_flat``): over the last FLAT_WINDOW
#: iterations of a scale, J fell by less than FLAT_FRACTION of its value. L-BFGS on
#: tubingen + starry_night still gains 4-5% per 10 iterations after 100 at 128 px and 1% at
#: 250 px after 230, so a default job seldom stops early; long jobs and converged scales do.
FLAT_WINDOW = 10
FLAT_FRACTION = 0.002
#: A scale runs at least this many iterations before it may end as flat.
FLAT_MIN_ITERATIONS = 20
#: Fraction of available memory a job may plan to use.
MEMORY_HEADROOM = 0.85

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")


@dataclass
class JobPlan:
    """What a job will do, decided before any pixel is touched."""

    height: int  # G at the final scale
    width: int
    scales: list[tuple[int, int]]  # (height, width) per scale, coarse to fine
    iterations: list[int]  # per scale
    style_blend: list[float]  # one weight per style image, summing to 1
    layers: list[str]  # every layer a loss reads
    last_layer: str  # the deepest one: the network stops there
    precision: Precision
    memory_bytes: int  # estimated peak
    notices: list[str] = field(default_factory=list)

    @property
    def total_iterations(self) -> int:
        return sum(self.iterations)


def _bad_setting(message: str, hint: str | None = None) -> FacestyleError:
    return FacestyleError(message, hint)


def _check_layer(name: str, what: str) -> None:
    if name not in FEATURE_LAYERS:
        raise _bad_setting(f"{what} {name!r} is not a VGG19 conv or relu layer.",
                           "Use names like relu1_1, conv4_2 or relu5_1.")


def normalised_blend(blend: Sequence[float] | None, n_styles: int) -> list[float]:
    """One weight per style image, non-negative, summing to 1 (equal when ``None``)."""
    if blend is None:
        return [1.0 / n_styles] * n_styles
    if len(blend) != n_styles:
        raise _bad_setting(f"{len(blend)} blend weights were given for {n_styles} style "
                           "images.", "Give one weight per style image, e.g. 0.7,0.3.")
    values = [float(w) for w in blend]
    if any(not np.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
        raise _bad_setting("Style blend weights must be non-negative and not all zero.")
    return [w / sum(values) for w in values]


def scale_sizes(height: int, width: int, multiscale: bool) -> list[tuple[int, int]]:
    """``[(h, w), ...]`` coarse to fine: halving the longest side while it stays >= 128."""
    sizes = [(height, width)]
    longest = max(height, width)
    while multiscale and longest // 2 >= MIN_SCALE_SIZE and len(sizes) < 3:
        longest //= 2
        sizes.insert(0, imgs.fit_size(height, width, longest))
    return sizes


def split_iterations(total: int, n_scales: int) -> list[int]:
    """``total`` iterations over the scales: each coarser scale gets
    :data:`COARSE_SHARE` of them (at least 1 while the finest keeps at least 1), the finest
    the rest."""
    if n_scales <= 1:
        return [total]
    coarse = max(1, round(total * COARSE_SHARE))
    if coarse * (n_scales - 1) >= total:
        coarse = max(0, (total - 1) // (n_scales - 1))
    return [coarse] * (n_scales - 1) + [total - coarse * (n_scales - 1)]


def plan_job(content_shape: tuple[int, ...], settings: StyleSettings,
             n_styles: int = 1) -> JobPlan:
    """Check ``settings`` for a content image of ``content_shape`` and plan the job.

    Raises:
        FacestyleError: a setting is invalid, or the image would not fit in memory (the
            message suggests a size that fits).
    """
    if settings.optimizer not in OPTIMIZERS:
        raise _bad_setting(f"Unknown optimizer {settings.optimizer!r}.", "Use lbfgs or adam.")
    if settings.init not in INITS:
        raise _bad_setting(f"Unknown init {settings.init!r}.", "Use content, noise or style.")
    if settings.pooling not in POOLINGS:
        raise _bad_setting(f"Unknown pooling {settings.pooling!r}.", "Use max or avg.")
    if int(settings.iterations) < 1:
        raise _bad_setting("The number of iterations must be at least 1.")
    if settings.optimizer == "adam" and not settings.lr > 0:
        raise _bad_setting("The learning rate must be positive.")
    _check_layer(settings.content_layer, "Content layer")
    for name, weight in settings.style_layers.items():
        _check_layer(name, "Style layer")
        if not np.isfinite(weight) or weight < 0:
            raise _bad_setting(f"The weight of style layer {name} must be a non-negative "
                               "number.")
    for name, value in (("alpha", settings.alpha), ("beta", settings.beta),
                        ("TV weight", settings.tv_weight)):
        if not np.isfinite(value) or value < 0:
            raise _bad_setting(f"{name} must be a non-negative number.")
    if not (settings.alpha or (settings.beta and any(settings.style_layers.values()))):
        raise _bad_setting("Both alpha and beta (or every style layer weight) are zero: "
                           "there is nothing to optimise.")

    notices: list[str] = []
    size = int(settings.size)
    if size > MAX_SIZE:
        notices.append(f"Size {size} px was capped to {MAX_SIZE} px (the largest allowed).")
        size = MAX_SIZE
    if size < MIN_SIZE:
        notices.append(f"Size {size} px was raised to {MIN_SIZE} px (the smallest allowed).")
        size = MIN_SIZE
    height, width = imgs.fit_size(int(content_shape[0]), int(content_shape[1]), size)

    layers = [settings.content_layer] if settings.alpha else []
    layers += [n for n, w in settings.style_layers.items() if w and n not in layers]
    last = deepest_layer(layers)
    scales = scale_sizes(height, width, settings.multiscale)
    factor = downsampling(last)
    if min(scales[0]) < factor:
        raise _bad_setting(
            f"At {width}x{height} px the image is too thin for layer {last}, which needs "
            f"at least {factor} px on each side.",
            "Use a larger size, a less elongated content image, or shallower layers.")

    precision = resolve(settings.device, settings.precision)
    bytes_per = 2 if precision.name == "bf16" else 4
    history = optimizer_history(settings.optimizer)
    content_layer = settings.content_layer if settings.alpha else None
    need = job_bytes(height, width, last, content_layer, bytes_per, history)
    free = available_bytes(precision.device)
    if free is not None and need > free * MEMORY_HEADROOM:
        fits = largest_fitting_size(content_shape, last, content_layer, bytes_per, history,
                                    free * MEMORY_HEADROOM)
        hint = (f"Try size {fits} px or smaller." if fits else
                "Close other programs, or use fewer or shallower layers.")
        raise FacestyleError(
            f"A {width}x{height} px image needs about {format_bytes(need)} of memory, but "
            f"only {format_bytes(free)} is free on {precision.describe()}.", hint)

    return JobPlan(height=height, width=width, scales=scales,
                   iterations=split_iterations(int(settings.iterations), len(scales)),
                   style_blend=normalised_blend(settings.style_blend, n_styles),
                   layers=layers, last_layer=last, precision=precision,
                   memory_bytes=need, notices=notices)


def optimizer_history(optimizer: str) -> int:
    """Image-sized fp32 vectors the optimiser keeps, in pairs (L-BFGS: s and y; Adam: moments)."""
    return LBFGS_HISTORY if optimizer == "lbfgs" else 1


def largest_fitting_size(content_shape: tuple[int, ...], last_layer: str,
                         content_layer: str | None, bytes_per_value: int, history: int,
                         budget: float) -> int | None:
    """The largest longest side (a multiple of 64) whose estimate fits ``budget`` bytes."""
    for size in range(MAX_SIZE, MIN_SIZE - 1, -64):
        h, w = imgs.fit_size(int(content_shape[0]), int(content_shape[1]), size)
        if job_bytes(h, w, last_layer, content_layer, bytes_per_value, history) <= budget:
            return size
    return None


def estimate_memory(settings: StyleSettings, content_shape: tuple[int, ...]) -> int:
    """Estimated peak bytes of a job with ``settings`` on a content image of that shape."""
    return plan_job(content_shape, settings).memory_bytes


@functools.lru_cache(maxsize=1)
def _network(last_layer: str, pooling: str, precision: Precision) -> torch.nn.Module:
    return prepare_network(VGG19Features(last_layer, pooling, fused=precision.fused), precision)


#: held while the network is built and while :func:`warm_up` runs: a job waits for both
#: (two threads computing at once would split float sums differently and change G)
_network_lock = threading.RLock()


def get_network(last_layer: str, pooling: str, precision: Precision) -> torch.nn.Module:
    """VGG19 down to ``last_layer`` in ``precision`` (the last one is kept for reuse; a
    second thread asking while it is built waits for it instead of building another)."""
    with _network_lock:
        return _network(last_layer, pooling, precision)


def warm_up(settings: StyleSettings, content_shape: tuple[int, ...] | None = None) -> bool:
    """Get ready for a job with ``settings``, so that Start shows G at once: build and keep
    its network (reading VGG19's weights takes about a second) and, given the content
    image's ``(H, W, ...)`` shape, run one forward and backward pass at the first scale's
    size (the CPU libraries prepare their kernels for each new shape on first use).
    Returns False (and does nothing more) when such a job could not run here."""
    shape = content_shape if content_shape is not None else (settings.size, settings.size, 3)
    try:
        plan = plan_job(shape, settings)
    except FacestyleError:
        return False
    with _network_lock:
        net = get_network(plan.last_layer, settings.pooling, plan.precision)
        if content_shape is not None:  # one evaluation, as the job's first, on grey images
            height, width = plan.scales[0]
            grey = np.full((height, width, 3), 128, np.uint8)
            problem = Problem(net, plan.precision, settings, plan, grey, [grey], height, width)
            x = preprocess(grey).to(plan.precision.device).requires_grad_(True)
            problem.evaluate(x)
    return True


def release_network() -> None:
    """Forget the kept network (about 80-160 MB), e.g. when the Style tab closes."""
    with _network_lock:
        _network.cache_clear()


class Problem:
    """The objective at one scale: targets from C and S, evaluated on G (fp32)."""

    def __init__(self, net: torch.nn.Module, precision: Precision, settings: StyleSettings,
                 plan: JobPlan, content: np.ndarray, styles: Sequence[np.ndarray],
                 height: int, width: int, temporal: TemporalTerm | None = None) -> None:
        self.net = net
        self.precision = precision
        self.layers = plan.layers
        device = precision.device
        with torch.no_grad():
            content_x = preprocess(imgs.resize(content, height, width)).to(device)
            content_target = None
            if settings.alpha:
                content_target = features(net, content_x, [settings.content_layer],
                                          precision)[settings.content_layer]
            style_layers = [n for n, w in settings.style_layers.items() if w]
            style_feats = []
            for style in styles:
                style_x = preprocess(imgs.resize_longest(style, max(height, width))).to(device)
                style_feats.append(features(net, style_x, style_layers, precision))
            targets = {}
            for name in style_layers:
                _, n_h, n_w = layer_shape(name, height, width)
                targets[name] = style_gram_target(style_feats, name, plan.style_blend,
                                                  n_h * n_w)
            del style_feats
        # J in the final size's units at every scale: the content term sums over the
        # content layer's positions, which a coarser scale has fewer of, while the style
        # terms are normalised per position; so the content term is scaled up by the
        # ratio of positions, keeping the balance alpha : beta of the final image.
        _, final_h, final_w = layer_shape(settings.content_layer, plan.height, plan.width)
        _, here_h, here_w = layer_shape(settings.content_layer, height, width)
        self.content_scale = (final_h * final_w) / float(here_h * here_w)
        self.objective: Objective = build_objective(
            settings.alpha * self.content_scale, settings.beta, settings.content_layer,
            content_target, settings.style_layers, targets, settings.tv_weight,
            # a per-value mean, so in the same units at every scale
            temporal.at(height, width, device) if temporal is not None else None).to(device)
        #: the backward passes' work buffers, reused by every evaluation at this scale
        self.scratch = Scratch()

    def evaluate(self, x: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
        """J's weighted terms at ``x`` (a leaf fp32 (1,3,H,W) tensor) and dJ/dx (flat)."""
        x.grad = None
        with torch.enable_grad(), self.scratch.active():
            feats = features(self.net, x, self.layers, self.precision)
            terms = self.objective(feats, x)
            terms.total.backward()
        values = terms.floats()
        if not np.isfinite(values["total"]):
            raise FacestyleError("The optimisation diverged (the loss is not a number).",
                                 "Lower the learning rate or the weights, or use L-BFGS.")
        assert x.grad is not None
        return values, x.grad.reshape(-1)


def initial_image(settings: StyleSettings, content: np.ndarray, styles: Sequence[np.ndarray],
                  blend: Sequence[float], height: int, width: int) -> torch.Tensor:
    """G at the start, (1, 3, H, W) fp32 in Caffe units: content, seeded noise or a style."""
    if settings.init == "noise":
        gen = torch.Generator().manual_seed(int(settings.seed))
        noise = torch.randn((1, 3, height, width), generator=gen) * NOISE_STD
        pixel_range_projection(noise)(noise.view(-1))
        return noise
    if settings.init == "style":
        main = styles[int(np.argmax(blend))]
        return preprocess(imgs.resize(main, height, width))
    return preprocess(imgs.resize(content, height, width))


def upsample_g(g: torch.Tensor, height: int, width: int,
               coarse_origin: torch.Tensor | None = None,
               fine_origin: torch.Tensor | None = None) -> torch.Tensor:
    """G of a coarser scale brought to ``(height, width)``: ``(1, 3, h, w)`` to
    ``(1, 3, height, width)``, Caffe units, not clamped (bicubic can overshoot).

    Given the image G started from at both sizes (the content, a style or a video frame's
    initial G; ``coarse_origin`` like ``g``, ``fine_origin`` of the new size), only what
    the coarse scale changed is upsampled and added to the sharp start image:
    ``G_fine = origin_fine + up(G_coarse - origin_coarse)``. Upsampling G itself would hand
    the finer scale a blurred content whose lost detail its first iterations must rebuild.
    Measured, bf16, tubingen + starry_night at 512 px, full-size iterations until J reaches
    the 300-iteration reference's: 20 at 128 px and 20 at 256 px then 108 with plain
    upsampling, 86 with this; 20 at 256 px alone 91 and 84.
    Without origins (a noise start) G itself is upsampled."""
    if coarse_origin is None or fine_origin is None:
        return _upsample(g, height, width)
    return fine_origin + _upsample(g - coarse_origin, height, width)


def _upsample(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return torch.nn.functional.interpolate(x, size=(height, width), mode="bicubic",
                                           align_corners=False)


def _images_for_loss(content: np.ndarray, styles: Sequence[np.ndarray],
                     preserve_colors: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    if not preserve_colors:
        return content, list(styles)
    content_y = imgs.rgb_to_yiq(content)[..., 0]
    return (imgs.luminance_image(content),
            [imgs.luminance_image(s, match=content_y) for s in styles])


def _check_image(image: object, what: str) -> np.ndarray:
    if image is None:
        raise FacestyleError(f"No {what} image was given.",
                             f"Pick a {what} image first." + (
                                 " It is the photo to repaint." if what == "content" else
                                 " It is the painting whose style G takes on."))
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8 or min(arr.shape[:2]) < 1:
        raise FacestyleError(f"The {what} image must be an RGB uint8 array (H, W, 3); got "
                             f"{arr.dtype} {arr.shape}.", "Load it with desktop.imageio.load_rgb.")
    return arr


def stylize(content: np.ndarray, styles: list[np.ndarray], settings: StyleSettings,
            cancel: CancelToken | None = None, *, init_image: np.ndarray | None = None,
            temporal: TemporalTerm | None = None) -> Iterator[IterationReport]:
    """Run one style-transfer job, yielding an :class:`IterationReport` after each iteration.

    ``content`` and each style are ``(H, W, 3)`` RGB uint8 (from ``desktop.imageio.
    load_rgb``). G has ``settings.size`` pixels on its longest side and the content's
    aspect ratio. Raises FacestyleError for missing images, bad settings or too little
    memory (before any work), and Cancelled when ``cancel`` is cancelled.

    For a video frame (:mod:`desktop.style.video`): ``init_image`` (``(H, W, 3)`` RGB, uint8 or
    float 0..255, any size) replaces ``settings.init`` as the first G, and ``temporal``
    adds ``gamma * J_temporal`` to J (reported as ``IterationReport.temporal``).
    """
    content = _check_image(content, "content")
    if not styles:
        raise FacestyleError("No style image was given.",
                             "Pick at least one style image: the painting whose style G "
                             "takes on.")
    styles = [_check_image(s, "style") for s in styles]
    plan = plan_job(content.shape, settings, len(styles))
    precision = plan.precision
    device_name = precision.describe()
    net = get_network(plan.last_layer, settings.pooling, precision)
    loss_content, loss_styles = _images_for_loss(content, styles, settings.preserve_colors)

    iteration = 0
    scales_table = [(h, w, n) for (h, w), n in zip(plan.scales, plan.iterations, strict=True)]
    x: torch.Tensor | None = None
    coarse_origin: torch.Tensor | None = None
    for scale_index, ((height, width), n_iter) in enumerate(
            zip(plan.scales, plan.iterations, strict=True)):
        if cancel is not None:
            cancel.checkpoint()
        # the image G starts from at this size (None for noise, drawn afresh per size)
        if init_image is not None:
            origin = preprocess(imgs.resize(np.asarray(init_image, np.float32), height, width))
        elif settings.init != "noise":
            origin = initial_image(settings, loss_content, loss_styles, plan.style_blend,
                                   height, width)
        else:
            origin = None
        if x is None:
            x = origin.clone() if origin is not None else initial_image(
                settings, loss_content, loss_styles, plan.style_blend, height, width)
        else:
            x = upsample_g(x.detach(), height, width, coarse_origin, origin)
        pixel_range_projection(x)(x.view(-1))  # bicubic can overshoot
        coarse_origin = origin
        x = x.to(precision.device).contiguous().requires_grad_(True)
        problem = Problem(net, precision, settings, plan, loss_content, loss_styles,
                          height, width, temporal)
        colour_source = imgs.resize(content, height, width) if settings.preserve_colors \
            else None
        losses, grad = problem.evaluate(x)
        stepper = Stepper(settings, x)
        history: list[float] = []
        for scale_iteration in range(1, n_iter + 1):
            if cancel is not None:
                cancel.checkpoint()
            start = time.perf_counter()
            if not stepper.step(grad):
                break
            previous = losses["total"]
            losses, grad = problem.evaluate(x)
            evaluations = 1
            while (losses["total"] > previous and evaluations <= MAX_RETREATS
                   and stepper.retreat()):
                losses, grad = problem.evaluate(x)
                evaluations += 1
            image = deprocess(x)
            if colour_source is not None:
                image = imgs.with_colours_of(image, colour_source)
            iteration += 1
            history.append(losses["total"])
            flat = settings.stop_when_flat and is_flat(history)
            yield IterationReport(
                iteration=iteration, total_iterations=plan.total_iterations, image=image,
                content=losses["content"], style=losses["style"], tv=losses["tv"],
                total=losses["total"], seconds=time.perf_counter() - start,
                device=device_name, precision=precision.name, scale_index=scale_index,
                notices=list(plan.notices), evaluations=evaluations,
                threads=torch.get_num_threads(), scales=scales_table,
                scale_iteration=scale_iteration, flat=flat, temporal=losses["temporal"])
            if flat:
                break
        del stepper, problem, grad  # free this scale's targets and history before the next


def is_flat(history: Sequence[float]) -> bool:
    """Whether J (one value per iteration of a scale) has stopped improving: after at
    least :data:`FLAT_MIN_ITERATIONS`, it fell by less than :data:`FLAT_FRACTION` over the
    last :data:`FLAT_WINDOW` iterations."""
    if len(history) < max(FLAT_MIN_ITERATIONS, FLAT_WINDOW + 1):
        return False
    before, now = history[-FLAT_WINDOW - 1], history[-1]
    return before - now < FLAT_FRACTION * abs(before)


def pixel_range_projection(x: torch.Tensor) -> Callable[[torch.Tensor], None]:
    """``project(v)``: clamp a flat view of an image like ``x`` to valid pixels, in place.

    In Caffe units channel c lies in ``[-mean_c, 255 - mean_c]``. Keeping G there during
    the optimisation (as the PyTorch tutorial does) means the image saved is the image
    optimised: measured at 256 px, letting 2% of the values stray outside and clipping
    only when saving doubled the saved image's J.
    """
    mean = torch.tensor(CAFFE_MEAN_BGR, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    low = (-mean).expand_as(x).reshape(-1).contiguous()
    high = (255.0 - mean).expand_as(x).reshape(-1).contiguous()

    def project(v: torch.Tensor) -> None:
        torch.clamp(v, low, high, out=v)

    return project


class Stepper:
    """One optimiser update of G in place (then back to valid pixels), and its undo-by-half.

    L-BFGS can :meth:`retreat` a step that raised J (halve it); Adam cannot (its steps
    are small and a rise is part of its dynamics).
    """

    def __init__(self, settings: StyleSettings, x: torch.Tensor) -> None:
        self.x = x
        self.flat = x.detach().view(-1)
        project = pixel_range_projection(x.detach())
        self.project = project
        self.adam = None
        self.lbfgs = None
        if settings.optimizer == "adam":
            self.adam = torch.optim.Adam([x], lr=float(settings.lr))
        else:
            self.lbfgs = LBFGS(history_size=LBFGS_HISTORY, lr=1.0, project=project,
                               first_step=LBFGS_FIRST_STEP)

    def step(self, grad: torch.Tensor) -> bool:
        """Update G from its gradient; False when L-BFGS can no longer descend."""
        if self.adam is not None:
            self.x.grad = grad.view_as(self.x)
            self.adam.step()
            self.project(self.flat)
            return True
        assert self.lbfgs is not None
        return self.lbfgs.step(self.flat, grad)

    def retreat(self) -> bool:
        """Halve the last step if the optimiser allows it (L-BFGS); False otherwise."""
        if self.lbfgs is None:
            return False
        self.lbfgs.retreat(self.flat, 0.5)
        return True


__all__ = ["JobPlan", "estimate_memory", "plan_job", "release_network", "stylize"]
