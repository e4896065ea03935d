"""Fine-tune a Siamese encoder f(x) with the triplet loss, step by step, for a UI or the CLI.

:func:`train_encoder` is a *generator*: it yields a :class:`StepReport` after every
optimiser step and an :class:`EpochReport` after every epoch (and one for epoch 0, the
starting model), and returns a :class:`TrainResult`. ``desktop.ui.qthreading.Worker``
drives it off the UI thread (``yielded`` carries the reports, ``result`` the result);
the CLI iterates it with a progress bar. It polls a :class:`~desktop.tasks.CancelToken`
between steps, so Cancel takes effect within one step.

What is trained (``TrainConfig.train``), by the encoder's submodule names:

* ``final``: only ``fc``, the last fully connected layer (128 x 256 + 128 weights);
* ``last-level``: ``level0`` (the last residual level) and ``fc``;
* ``all``: every parameter.

**Threshold calibration.** Fine-tuning changes the scale of d, so a fixed tau would
misjudge a model whose ranking of pairs got better. After each epoch the threshold t that
best splits *training* pairs is found, and the held-out pairs (identities never trained
on) are scored at t: an honest held-out accuracy, as the threshold never saw them. The
epoch with the best held-out score (that accuracy, then ROC AUC) is kept; training stops
after ``patience`` epochs without a better one. Epoch 0, the starting model, competes
too. At the end, ``fc``'s weights are multiplied by s = sqrt(t_0 / t_kept), t_0 being the
starting model's threshold on the same training pairs: every d scales by s^2 (the ranking
is unchanged), so the kept model sits on the starting model's scale and the manager's tau
keeps its meaning. A run whose best epoch is 0 returns the starting weights untouched.
:attr:`TrainResult.final` holds the held-out figures at tau after that: the figures the
activation guard compares.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from desktop.device import cpu_precision, describe_device, pick_device
from desktop.errors import FacestyleError
from desktop.face.evaluation import PairMetrics, best_threshold, distance_metrics
from desktop.face.training.augment import Augmentation, augment, chips_to_tensor
from desktop.face.training.data import ChipDataset, PairChips
from desktop.face.training.sampler import PKSampler
from desktop.face.training.triplet import MINING_RULES, Mining, triplet_loss
from desktop.face.types import DEFAULT_TAU
from desktop.tasks import CancelToken, ProgressCallback, no_progress

TrainMode = Literal["final", "last-level", "all"]
TRAIN_MODES: dict[str, tuple[str, ...] | None] = {
    "final": ("fc",),
    "last-level": ("level0", "fc"),
    "all": None,  # every parameter
}
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "step", "constant")


@dataclass
class TrainConfig:
    """Every choice that decides a fine-tune (stored in the checkpoint's metadata)."""

    epochs: int = 10
    margin: float = 0.2  # alpha, in units of squared L2 distance d
    mining: Mining = "semi-hard"
    train: TrainMode = "last-level"
    batch_p: int = 8  # people per batch
    batch_k: int = 4  # images per person
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD only
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_steps: int = -1  # linear warm-up; -1 = one epoch, capped at a tenth of the run
    patience: int = 3  # epochs without a better held-out score before stopping
    heldout_fraction: float = 0.2
    tau: float = DEFAULT_TAU  # the operating threshold on d used for held-out accuracy
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto | fp32 | bf16
    steps_per_epoch: int = 0  # 0 = enough P x K batches to see every image about once
    eval_batch: int = 32
    augmentation: Augmentation = field(default_factory=Augmentation)

    def validate(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append("epochs must be at least 1")
        if self.margin <= 0:
            problems.append("the margin alpha must be positive")
        if self.mining not in MINING_RULES:
            problems.append(f"mining must be one of {', '.join(MINING_RULES)}")
        if self.train not in TRAIN_MODES:
            problems.append(f"train must be one of {', '.join(TRAIN_MODES)}")
        if self.batch_p < 2 or self.batch_k < 2:
            problems.append("a batch needs P >= 2 people and K >= 2 images each")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {', '.join(SCHEDULES)}")
        if not self.lr > 0:
            problems.append("the learning rate must be positive")
        if not 0 < self.heldout_fraction < 1:
            problems.append("the held-out fraction must be between 0 and 1")
        if problems:
            raise FacestyleError("Invalid training settings: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        if isinstance(kwargs.get("augmentation"), dict):
            aug = kwargs["augmentation"]
            if "blur_sigma" in aug:
                aug = {**aug, "blur_sigma": tuple(aug["blur_sigma"])}
            kwargs["augmentation"] = Augmentation(**aug)
        return cls(**kwargs)


@dataclass
class StepReport:
    """After each optimiser step."""

    epoch: int  # 1-based
    step: int  # 1-based, within the epoch
    steps_per_epoch: int
    global_step: int  # 1-based
    total_steps: int
    loss: float  # the triplet loss optimised this step
    active_fraction: float  # valid triplets in the batch with L > 0
    mined: int  # triplets (anchors for batch-hard) that entered the loss
    valid: int  # valid triplets in the batch
    lr: float
    seconds: float  # this step's wall time
    images_per_second: float
    triplets_per_second: float  # valid triplets evaluated per second
    elapsed: float = 0.0  # seconds since training began (epoch 0's scoring included)
    eta_seconds: float = float("nan")  # estimate for the rest, scoring included

    kind: str = "step"

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v)
                for k, v in dataclasses.asdict(self).items()}


@dataclass
class EpochReport:
    """After each epoch; epoch 0 is the starting model (no training, loss = NaN).

    Held-out figures are on identities never trained on; ``heldout_accuracy`` is at
    ``threshold``, the d threshold calibrated on the training pairs this epoch.
    """

    epoch: int
    epochs: int
    loss: float  # mean step loss over the epoch
    active_fraction: float  # mean over the epoch's steps
    heldout_accuracy: float  # at the calibrated threshold
    heldout_best_accuracy: float  # at the best threshold for the held-out pairs themselves
    heldout_auc: float
    heldout_eer: float
    heldout_pairs: int
    threshold: float  # d threshold calibrated on training pairs (this epoch's scale)
    train_accuracy: float  # training pairs' accuracy at that threshold
    improved: bool  # the best held-out score so far
    best_epoch: int
    seconds: float  # the whole epoch: steps plus scoring
    eval_seconds: float = 0.0  # of which scoring the held-out and calibration pairs
    lr: float = 0.0

    kind: str = "epoch"

    def to_json(self) -> dict[str, Any]:
        def num(v: float) -> float | None:
            return round(float(v), 6) if math.isfinite(v) else None

        return {k: (num(v) if isinstance(v, float) else v)
                for k, v in dataclasses.asdict(self).items()}


TrainEvent = StepReport | EpochReport


@dataclass
class TrainResult:
    """What a finished fine-tune returns; the model passed in now holds the kept weights,
    rescaled onto the starting model's scale of d (see the module docstring)."""

    config: TrainConfig
    baseline: PairMetrics  # held-out, starting model, at its calibrated threshold
    best: PairMetrics  # held-out, kept epoch, at its calibrated threshold
    final: PairMetrics  # held-out, the returned (calibrated) model, at config.tau
    best_epoch: int  # 0 = no epoch beat the starting model (weights unchanged)
    epochs_run: int
    stop_reason: str  # "completed" | "early stop: ..."
    history: list[EpochReport]
    step_losses: list[float]
    step_active: list[float]
    data: dict[str, Any]
    device: str
    precision: str
    trainable_parameters: int
    seconds: float
    calibration_scale: float | None = None  # s applied to fc (None: not applied)

    @property
    def improved(self) -> bool:
        return self.best_epoch > 0

    def metrics_json(self) -> dict[str, Any]:
        return {"baseline": self.baseline.to_json(), "best": self.best.to_json(),
                "final": self.final.to_json(), "best_epoch": self.best_epoch,
                "epochs_run": self.epochs_run, "stop_reason": self.stop_reason,
                "calibration_scale": self.calibration_scale}


# -- pieces ------------------------------------------------------------------------------


def select_trainable(model: nn.Module, mode: str) -> list[nn.Parameter]:
    """Freeze everything but the parts ``mode`` names; return the parameters to train."""
    if mode not in TRAIN_MODES:
        raise FacestyleError(f"Unknown training mode {mode!r}; use one of "
                             f"{', '.join(TRAIN_MODES)}.")
    names = TRAIN_MODES[mode]
    if names is None:
        params = [p for p in model.parameters()]
        for p in params:
            p.requires_grad_(True)
        return params
    missing = [n for n in names if not isinstance(getattr(model, n, None), nn.Module)]
    if missing:
        raise FacestyleError(
            f"This encoder has no {', '.join(missing)} part, so '{mode}' cannot be trained.",
            "Use --train all.",
        )
    for p in model.parameters():
        p.requires_grad_(False)
    params = [p for n in names for p in getattr(model, n).parameters()]
    for p in params:
        p.requires_grad_(True)
    return params


def resolve_precision(pref: str, device: torch.device) -> str:
    """``fp32`` or ``bf16``. ``auto`` is bf16 (autocast) on a CUDA GPU that supports it and
    fp32 on the CPU: on the AMX development CPU, bf16 autocast made a training step of the
    dlib encoder slower (1.7x for ``last-level``, 4.7x for ``all``; ``bench/pairs_eval.py``
    prints both), its backward pass lacking fast bf16 kernels there."""
    if pref not in ("auto", "fp32", "bf16"):
        raise FacestyleError(f"Unknown precision {pref!r}; use auto, fp32 or bf16.")
    if pref == "bf16" and device.type == "cpu":
        return cpu_precision(pref, device, what="Fine-tuning")
    if pref != "auto":
        return pref
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "fp32"


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                          enabled=precision == "bf16")


@torch.no_grad()
def embed_chips(model: nn.Module, chips: np.ndarray, device: torch.device | str = "cpu",
                batch: int = 32, precision: str = "fp32") -> np.ndarray:
    """(N, H, W, 3) uint8 chips to (N, D) float32 embeddings, in eval mode, no augmentation."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(chips), batch):
            x = chips_to_tensor(chips[start:start + batch], device)
            with _autocast(device, precision):
                out.append(model(x).float().cpu().numpy())
    finally:
        model.train(was_training)
    dim = out[0].shape[1] if out else 128
    return np.concatenate(out) if out else np.zeros((0, dim), np.float32)


def pair_distances(model: nn.Module, pairs: PairChips, device: torch.device | str = "cpu",
                   batch: int = 32) -> np.ndarray:
    """d = ||f(x1) - f(x2)||^2 of each pair (fp32, eval mode)."""
    emb = embed_chips(model, pairs.chips, device, batch, "fp32")
    a, b = emb[pairs.pairs[:, 0]], emb[pairs.pairs[:, 1]]
    return np.sum((a - b) ** 2, axis=1, dtype=np.float64)


def evaluate_on_pairs(model: nn.Module, pairs: PairChips, tau: float = DEFAULT_TAU,
                      device: torch.device | str = "cpu", batch: int = 32) -> PairMetrics:
    """Held-out figures of an encoder (fp32) on a :class:`PairChips` set, threshold rule."""
    return distance_metrics(pair_distances(model, pairs, device, batch), pairs.same, tau)


def calibration_pairs(train: ChipDataset, max_images: int = 200, seed: int = 0) -> PairChips:
    """Balanced pairs over (a sample of) the training identities, to calibrate tau on."""
    from desktop.face.training.data import heldout_pairs

    if len(train) > max_images:
        order = np.random.default_rng(seed).permutation(train.num_identities)
        counts = np.bincount(train.labels, minlength=train.num_identities)
        keep = order[np.cumsum(counts[order]) <= max_images]
        train = train.subset(sorted(keep.tolist()) if len(keep) >= 2 else order[:2].tolist())
    return heldout_pairs(train, seed=seed)


def scale_output(model: nn.Module, factor: float, probe: torch.Tensor) -> bool:
    """Multiply the encoder's output by ``factor`` by scaling ``fc`` (weight and bias).

    ``probe`` is a small float input batch used to check the effect. Returns False, leaving
    the model unchanged, when it has no ``fc`` or its output is not linear in ``fc`` (e.g.
    normalised after it).
    """
    fc = getattr(model, "fc", None)
    if not isinstance(fc, nn.Linear) or not math.isfinite(factor) or factor <= 0:
        return False
    was_training = model.training
    model.eval()
    with torch.no_grad():
        before = model(probe).float()
        fc.weight.mul_(factor)
        if fc.bias is not None:
            fc.bias.mul_(factor)
        after = model(probe).float()
        ok = torch.allclose(after, before * factor, rtol=1e-3, atol=1e-5)
        if not ok:
            fc.weight.div_(factor)
            if fc.bias is not None:
                fc.bias.div_(factor)
    model.train(was_training)
    return ok


def _lr_lambda(schedule: str, total: int, warmup: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        t = (step - warmup) / max(1, total - warmup)
        if schedule == "step":  # x0.1 at half, x0.01 at three quarters
            return 1.0 if t < 0.5 else (0.1 if t < 0.75 else 0.01)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))  # cosine to 5%

    return factor


def _make_optimizer(params: list[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay, nesterov=config.momentum > 0)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def split_for_training(dataset: ChipDataset, config: TrainConfig
                       ) -> tuple[ChipDataset, PairChips]:
    """Check there is enough data, split by identity, and build the held-out pairs."""
    from desktop.face.training.data import heldout_pairs

    dataset.require_trainable()
    train, held = dataset.split_by_identity(config.heldout_fraction, config.seed)
    return train, heldout_pairs(held, train, seed=config.seed)


# -- the loop ----------------------------------------------------------------------------


def train_encoder(
    model: nn.Module,
    train: ChipDataset,
    heldout: PairChips,
    config: TrainConfig | None = None,
    *,
    cancel: CancelToken | None = None,
    progress: ProgressCallback = no_progress,
) -> Generator[TrainEvent, None, TrainResult]:
    """Fine-tune ``model`` in place on ``train`` with the triplet loss (see module doc).

    Args:
        model: any ``nn.Module`` mapping float (N, 3, H, W) RGB 0..255 to (N, D); for
            ``final``/``last-level`` it needs ``fc`` (and ``level0``) submodules.
        train: training identities (at least 2; see :func:`split_for_training`).
        heldout: pairs over identities never trained on.
        config: the settings; defaults to :class:`TrainConfig()`.
    Yields:
        a :class:`StepReport` per step, an :class:`EpochReport` per epoch (0 first).
    Returns:
        :class:`TrainResult`; ``model`` holds the weights of its ``best_epoch``.
    Raises:
        Cancelled: when ``cancel`` is set (the model then holds the best weights so far).
    """
    config = config or TrainConfig()
    config.validate()
    if train.num_identities < 2:
        raise FacestyleError("Training needs at least 2 identities in the training split.")
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    device = pick_device(config.device)
    precision = resolve_precision(config.precision, device)
    model.to(device)
    params = select_trainable(model, config.train)
    n_trainable = sum(p.numel() for p in params)
    optimizer = _make_optimizer(params, config)
    sampler = PKSampler(train.labels, config.batch_p, config.batch_k, seed=config.seed)
    steps_per_epoch = config.steps_per_epoch or sampler.batches_per_epoch
    total_steps = steps_per_epoch * config.epochs
    warmup = config.warmup_steps if config.warmup_steps >= 0 else \
        min(steps_per_epoch, total_steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(config.schedule, total_steps, warmup))
    gen = torch.Generator(device=device)
    gen.manual_seed(config.seed)
    chips_all = torch.from_numpy(np.array(train.chips, copy=True))  # uint8, on the CPU
    labels_all = torch.as_tensor(train.labels)

    calib = calibration_pairs(train, seed=config.seed)

    eval_time = [0.0]

    def evaluate() -> tuple[PairMetrics, float, float]:
        """Held-out figures at the threshold calibrated on training pairs; (m, t, train acc)."""
        t0 = time.perf_counter()
        d_train = pair_distances(model, calib, device, config.eval_batch)
        threshold, train_acc = best_threshold(-d_train, calib.same)
        threshold = -threshold  # similarity s = -d back to d
        d_held = pair_distances(model, heldout, device, config.eval_batch)
        eval_time[0] = time.perf_counter() - t0
        return distance_metrics(d_held, heldout.same, threshold), threshold, train_acc

    def checkpoint() -> None:
        if cancel is not None:
            cancel.checkpoint()

    baseline, threshold, train_acc = evaluate()
    best_metrics, best_epoch, best_threshold_d = baseline, 0, threshold
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    history: list[EpochReport] = []
    step_losses: list[float] = []
    step_active: list[float] = []

    def epoch_report(epoch: int, metrics: PairMetrics, threshold: float, train_acc: float,
                     losses: list[float], actives: list[float], improved: bool,
                     seconds: float) -> EpochReport:
        return EpochReport(
            epoch=epoch, epochs=config.epochs,
            loss=float(np.mean(losses)) if losses else float("nan"),
            active_fraction=float(np.mean(actives)) if actives else float("nan"),
            heldout_accuracy=metrics.accuracy, heldout_best_accuracy=metrics.best_accuracy,
            heldout_auc=metrics.roc_auc, heldout_eer=metrics.eer, heldout_pairs=metrics.pairs,
            threshold=threshold, train_accuracy=train_acc,
            improved=improved, best_epoch=best_epoch, seconds=seconds,
            eval_seconds=eval_time[0], lr=float(optimizer.param_groups[0]["lr"]))

    first = epoch_report(0, baseline, threshold, train_acc, [], [], True,
                         time.perf_counter() - started)
    history.append(first)
    yield first

    stop_reason = "completed"
    since_best = 0
    global_step = 0
    epochs_run = 0
    try:
        for epoch in range(1, config.epochs + 1):
            epoch_start = time.perf_counter()
            losses: list[float] = []
            actives: list[float] = []
            model.train()
            batches: Iterator[np.ndarray] = (sampler.batch() for _ in range(steps_per_epoch))
            for step, idx in enumerate(batches, start=1):
                checkpoint()
                t0 = time.perf_counter()
                index = torch.as_tensor(idx)
                x = augment(chips_to_tensor(chips_all[index], device), config.augmentation, gen)
                y = labels_all[index].to(device)
                with _autocast(device, precision):
                    emb = model(x)
                loss, stats = triplet_loss(emb.float(), y, config.margin, config.mining)
                optimizer.zero_grad(set_to_none=True)
                if loss.requires_grad:
                    loss.backward()
                    optimizer.step()
                scheduler.step()
                global_step += 1
                dt = max(time.perf_counter() - t0, 1e-9)
                losses.append(stats.loss)
                actives.append(stats.active_fraction)
                step_losses.append(stats.loss)
                step_active.append(stats.active_fraction)
                elapsed = time.perf_counter() - started
                eta = elapsed / global_step * (total_steps - global_step)
                progress(global_step / total_steps,
                         f"epoch {epoch}/{config.epochs} loss {stats.loss:.4f}")
                yield StepReport(
                    epoch=epoch, step=step, steps_per_epoch=steps_per_epoch,
                    global_step=global_step, total_steps=total_steps, loss=stats.loss,
                    active_fraction=stats.active_fraction, mined=stats.mined,
                    valid=stats.valid, lr=float(optimizer.param_groups[0]["lr"]), seconds=dt,
                    images_per_second=len(idx) / dt, triplets_per_second=stats.valid / dt,
                    elapsed=elapsed, eta_seconds=eta)
            checkpoint()
            metrics, threshold, train_acc = evaluate()
            epochs_run = epoch
            improved = metrics.score_key() > best_metrics.score_key()
            if improved:
                best_metrics, best_epoch, best_threshold_d = metrics, epoch, threshold
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                since_best = 0
            else:
                since_best += 1
            report = epoch_report(epoch, metrics, threshold, train_acc, losses, actives,
                                  improved, time.perf_counter() - epoch_start)
            history.append(report)
            yield report
            if since_best >= config.patience and epoch < config.epochs:
                stop_reason = (f"early stop: no better held-out score for {since_best} "
                               f"epochs (best at epoch {best_epoch})")
                break
    finally:
        model.load_state_dict(best_state)
        for p in model.parameters():
            p.requires_grad_(False)
        model.eval()

    scale: float | None = None
    start_threshold = history[0].threshold
    if best_epoch > 0 and all(math.isfinite(t) and t > 0
                              for t in (best_threshold_d, start_threshold)):
        factor = math.sqrt(start_threshold / best_threshold_d)
        probe = chips_to_tensor(calib.chips[:4], device)
        if scale_output(model, factor, probe):
            scale = factor
    final = evaluate_on_pairs(model, heldout, config.tau, device, config.eval_batch)
    return TrainResult(
        config=config, baseline=baseline, best=best_metrics, final=final,
        best_epoch=best_epoch, epochs_run=epochs_run, stop_reason=stop_reason,
        history=history, step_losses=step_losses, step_active=step_active,
        data={"train_identities": train.num_identities, "train_images": len(train),
              "heldout": heldout.description, "heldout_pairs": len(heldout),
              "calibration_pairs": len(calib)},
        device=describe_device(device), precision=precision,
        trainable_parameters=n_trainable, seconds=time.perf_counter() - started,
        calibration_scale=scale)


def run_training(events: Generator[TrainEvent, None, TrainResult],
                 on_event: Callable[[TrainEvent], None] | None = None) -> TrainResult:
    """Drive :func:`train_encoder` to the end (for the CLI, scripts and tests)."""
    while True:
        try:
            event = next(events)
        except StopIteration as stop:
            return stop.value
        if on_event is not None:
            on_event(event)
