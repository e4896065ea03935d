"""What the Model page does, without Qt: read the model state, fine-tune on the gallery,
compare, activate or roll back (with the gallery's re-embedding), fit the verification
head and switch the decision rule.

Everything here is plain Python over the training core (:mod:`desktop.face.training`,
:mod:`desktop.face.encoder_versions`, :mod:`desktop.face.verifier`,
:mod:`desktop.face.evaluation`) and the gallery (:mod:`desktop.store`). The page runs each
long call in a :class:`desktop.ui.qthreading.Worker`: the ``cancel`` / ``progress``
parameters are the Worker's, and the generators yield what the page draws.

``ModelService(registry, engine_factory)``: tests pass a registry of tiny encoders and a
fake engine factory; the app uses the defaults (the user's encoder folder, and
``EncoderRegistry.build_engine`` for the live Check-in engine).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from desktop.device import pick_device
from desktop.errors import Cancelled, FacestyleError
from desktop.face.encoder_versions import (
    ActivationCheck,
    ActivationRefused,
    EncoderRegistry,
    EncoderVersion,
)
from desktop.face.evaluation import PairMetrics, distance_metrics, probability_metrics
from desktop.face.training import (
    MIN_IDENTITIES,
    MIN_IMAGES_PER_IDENTITY,
    NotEnoughData,
    TrainConfig,
    TrainEvent,
)
from desktop.face.training.jobs import FineTuneOutcome, fine_tune_version
from desktop.face.types import DEFAULT_TAU, EngineFactory, FaceEngineLike
from desktop.face.verifier import (
    Features,
    VerificationHead,
    VerifierRule,
    fit_verifier,
    load_verifier,
    sample_pairs,
)
from desktop.jobs import dataset_from_gallery, switch_encoder
from desktop.store.reembed import ReembedReport
from desktop.tasks import CancelToken, ProgressCallback, no_progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phase:
    """A step of a long job that is not a training step, for the page's status line."""

    message: str


@dataclass
class GalleryReadiness:
    """Whether the gallery can be trained on: people with at least 2 photos (templates)."""

    people: int
    eligible: int  # people with >= MIN_IMAGES_PER_IDENTITY templates
    templates: int
    eligible_templates: int

    @property
    def can_train(self) -> bool:
        return self.eligible >= MIN_IDENTITIES

    def message(self) -> str:
        """One plain sentence for the page."""
        have = (f"{self.eligible} of the {self.people} enrolled "
                f"{'person has' if self.people == 1 else 'people have'} at least "
                f"{MIN_IMAGES_PER_IDENTITY} photos ({self.eligible_templates} photos in all)")
        if self.can_train:
            return f"{have}: enough to fine-tune on."
        return (f"{have}. Fine-tuning needs at least {MIN_IDENTITIES} people with "
                f"{MIN_IMAGES_PER_IDENTITY} or more photos each: enrol more people, or add "
                "photos to the ones enrolled (People page).")


@dataclass
class VersionRow:
    """One encoder version, as the versions table shows it."""

    version: EncoderVersion
    active: bool
    previous: bool  # what "Roll back" returns to

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def heldout(self) -> dict[str, Any]:
        """Held-out figures of the saved model at tau (empty for the built-in)."""
        return dict(self.version.metrics.get("final") or {})

    def data_text(self) -> str:
        if self.version.builtin:
            return "dlib's pretrained ResNet (about 3 million faces)"
        data = self.version.meta.get("data", {})
        people, images = data.get("identities"), data.get("images")
        origin = str(data.get("origin", ""))
        where = "the gallery" if origin.startswith("gallery:") else \
            "a photo folder" if origin.startswith("folder:") else (origin or "?")
        return f"{people} people, {images} photos from {where}"

    def train_text(self) -> str:
        if self.version.builtin:
            return "as shipped"
        train = self.version.meta.get("train", {})
        what = {"final": "last layer", "last-level": "last level",
                "all": "whole network"}.get(train.get("train"), train.get("train", "?"))
        metrics = self.version.metrics
        return (f"{what}, {train.get('mining', '?')} mining, margin {train.get('margin', '?')}, "
                f"{metrics.get('epochs_run', '?')}/{train.get('epochs', '?')} epochs")

    def created_text(self) -> str:
        return local_date(self.version.created) if self.version.created else "—"


@dataclass
class HeadInfo:
    """The verification head saved for the active encoder."""

    head: VerificationHead

    @property
    def features(self) -> str:
        return self.head.features

    def describe(self) -> str:
        m = self.head.metrics
        parts = [f"{FEATURE_NAMES.get(self.head.features, self.head.features)}, trained "
                 f"{local_date(self.head.created)} on {m.get('train_pairs', '?')} pairs"]
        if "heldout_balanced_accuracy" in m:
            parts.append(f"on {m.get('heldout_people')} people it never saw: accuracy "
                         f"{m['heldout_balanced_accuracy']:.1%}, ROC AUC "
                         f"{m['heldout_roc_auc']:.3f}")
        return "; ".join(parts)


FEATURE_NAMES = {"abs": "|f_i - f_j| features", "chi2": "chi-square features"}


@dataclass
class RuleFigures:
    """Both decision rules scored on the same pairs of gallery photos (active encoder)."""

    threshold: PairMetrics
    head: PairMetrics | None
    same_pairs: int
    different_pairs: int
    people: int
    head_fitted_on_these: bool = True

    def description(self) -> str:
        text = (f"{self.same_pairs} same-person and {self.different_pairs} different-person "
                f"pairs of photos of the {self.people} people in the gallery")
        if self.head is not None and self.head_fitted_on_these:
            text += (". The head learned from these same pairs, so its figures here are "
                     "optimistic; its held-out estimate is in the head's description")
        return text


@dataclass
class ModelOverview:
    """Everything the page shows about the model in use (read off the UI thread)."""

    active: EncoderVersion
    rule: str  # "threshold" | "verifier"
    tau: float
    margin: float
    versions: list[VersionRow]
    previous: str | None
    head: HeadInfo | None
    head_problem: str  # why there is no usable head ("" when there is one)
    readiness: GalleryReadiness
    figures: RuleFigures | None
    figures_problem: str = ""
    stale_templates: int = 0
    live_model_id: str | None = None  # what the front desk's engine runs (set by the page)

    @property
    def active_row(self) -> VersionRow:
        return next(r for r in self.versions if r.active)


@dataclass
class FineTuneSummary:
    """A finished fine-tune: the saved version and its comparison with the active one."""

    outcome: FineTuneOutcome
    check: ActivationCheck | None
    check_problem: str = ""

    @property
    def name(self) -> str:
        return self.outcome.version.name


@dataclass
class SwitchReport:
    """An activation or roll-back and the gallery's re-embedding after it."""

    action: str  # "activate" | "rollback"
    version: EncoderVersion
    check: ActivationCheck | None
    reembed: ReembedReport | None
    reembed_cancelled: bool = False
    head_missing: bool = False  # the rule is the head, but none fits the new encoder


@dataclass
class HeadReport:
    head: VerificationHead
    figures: RuleFigures | None
    stale_left_out: int = 0
    notes: list[str] = field(default_factory=list)


def local_date(iso: str | None) -> str:
    """An ISO 8601 time as a short local date and time (``2024-06-01 15:30``)."""
    if not iso:
        return "?"
    try:
        return dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def default_version_name(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now()
    return now.strftime("gallery-%Y-%m-%d-%H%M")


def gallery_tau(gallery: Any) -> tuple[float, float]:
    """The gallery's (tau, margin) settings, or dlib's defaults without a gallery."""
    if gallery is None:
        return DEFAULT_TAU, 0.0
    return float(gallery.get_setting("tau")), float(gallery.get_setting("margin"))


def readiness_of(gallery: Any) -> GalleryReadiness:
    people = gallery.people() if gallery is not None else []
    counts = [p.n_templates for p in people]
    eligible = [c for c in counts if c >= MIN_IMAGES_PER_IDENTITY]
    return GalleryReadiness(len(people), len(eligible), sum(counts), sum(eligible))


def rule_figures(embeddings: np.ndarray, labels: np.ndarray, tau: float,
                 head: VerificationHead | None = None, seed: int = 0) -> RuleFigures:
    """Score the threshold rule (d <= tau) and the head (p >= its threshold) on balanced
    pairs of the given descriptors: every same-person pair and as many sampled
    different-person pairs.

    Raises:
        FacestyleError: no same-person pair or no different-person pair.
    """
    emb = np.asarray(embeddings, np.float64)
    sample = sample_pairs(labels, negatives_per_positive=1.0, seed=seed)
    a, b = emb[sample.i], emb[sample.j]
    d = np.sum((a - b) ** 2, axis=1)
    threshold = distance_metrics(d, sample.same, tau)
    head_metrics = None
    if head is not None:
        p = np.asarray(head.probability(a, b), np.float64).reshape(-1)
        head_metrics = probability_metrics(p, sample.same, head.threshold)
    n_same = int(sample.same.sum())
    return RuleFigures(threshold, head_metrics, n_same, len(sample.same) - n_same,
                       len(np.unique(labels)))


def prepare_for_training() -> None:
    """Keep a fine-tune from stalling the UI thread (see :mod:`desktop.ui.torch_runtime`)."""
    from desktop.ui.torch_runtime import prepare_background_torch

    prepare_background_torch(optimizers=True)


class ModelService:
    """The Model page's operations (see the module docstring).

    Args:
        registry: the encoder versions (default: the user's encoder folder).
        engine_factory: builds the live Check-in engine for the active encoder (default:
            ``registry.build_engine()``); called in a worker thread after a switch.
        device: where to train and evaluate (``auto``: the GPU when there is one).
        train_overrides: :class:`TrainConfig` fields the page applies to every fine-tune
            on top of the manager's choices (e.g. ``batch_p``, ``seed``; tests use it for
            fast settings).
    """

    def __init__(self, registry: EncoderRegistry | None = None,
                 engine_factory: EngineFactory | None = None, device: str = "auto",
                 train_overrides: dict[str, Any] | None = None) -> None:
        self.registry = registry or EncoderRegistry()
        self._engine_factory = engine_factory
        self.device = device
        self.train_overrides = dict(train_overrides or {})

    # -- reading ---------------------------------------------------------------------------
    def head_for_active(self) -> tuple[HeadInfo | None, str]:
        """The head saved for the active encoder, or (None, why not)."""
        try:
            return HeadInfo(load_verifier(model_id=self.registry.active_model_id())), ""
        except FacestyleError as exc:
            return None, exc.message

    def overview(self, gallery: Any) -> ModelOverview:
        """The state of the model: active version and rule, versions, head, figures."""
        registry = self.registry
        state = registry.state()
        active = registry.active()
        previous = registry.previous()
        versions = [VersionRow(v, v.name == active.name,
                               previous is not None and v.name == previous.name)
                    for v in registry.list()]
        head, head_problem = self.head_for_active()
        tau, margin = gallery_tau(gallery)
        figures, problem, stale = None, "", 0
        if gallery is None:
            problem = "There is no gallery to measure the rules on."
        else:
            stale = gallery.count_stale(active.model_id)
            g = gallery.embeddings(active.model_id)
            try:
                figures = rule_figures(g.embeddings, g.person_ids, tau,
                                       head.head if head else None)
            except FacestyleError as exc:
                problem = (f"{exc.message} (The figures are measured on pairs of the "
                           "gallery's own photos.)")
        return ModelOverview(active, state.rule, tau, margin, versions,
                             previous.name if previous else None, head, head_problem,
                             readiness_of(gallery), figures, problem, stale)

    # -- fine-tuning -----------------------------------------------------------------------
    def fine_tune(
        self,
        gallery: Any,
        name: str,
        config: TrainConfig,
        *,
        cancel: CancelToken | None = None,
        progress: ProgressCallback = no_progress,
    ) -> Generator[TrainEvent | Phase, None, FineTuneSummary]:
        """Fine-tune the active encoder on the gallery's people with 2+ photos, save it as
        ``name`` (not active), then compare it with the active one on its held-out pairs.

        Yields :class:`Phase` messages and the core's step / epoch reports.

        Raises:
            NotEnoughData: fewer than 3 such people (the core's message).
            FacestyleError: a bad or taken name, bad settings.
            Cancelled: on cancel; nothing is saved.
        """
        yield Phase("Preparing…")
        prepare_for_training()
        yield Phase("Reading the gallery's photos…")
        readiness = readiness_of(gallery)
        if not readiness.can_train:
            raise NotEnoughData(readiness.message())
        dataset = dataset_from_gallery(gallery)
        if cancel is not None:
            cancel.checkpoint()
        yield Phase(f"Loading the encoder in use ({self.registry.active().name}) and "
                    "measuring where it starts…")
        outcome = yield from fine_tune_version(dataset, name, config, self.registry,
                                               cancel=cancel, progress=progress)
        yield Phase(f"Saved {name}. Comparing it with the encoder in use on the same "
                    "set-aside people…")
        try:
            check = self.compare(name, config.tau)
            problem = ""
        except FacestyleError as exc:  # the version is saved; the comparison is a bonus
            check, problem = None, exc.message
        return FineTuneSummary(outcome, check, problem)

    def compare(self, name: str, tau: float | None = None) -> ActivationCheck:
        """Score ``name`` and the active encoder on the same held-out pairs (the guard's
        comparison, without activating); both metrics carry their ROC."""
        return self.registry.check_activation(name, tau if tau is not None else DEFAULT_TAU,
                                              pick_device(self.device))

    # -- switching -------------------------------------------------------------------------
    def switch(
        self,
        gallery: Any,
        name: str | None,
        tau: float | None = None,
        *,
        cancel: CancelToken | None = None,
        progress: ProgressCallback = no_progress,
    ) -> Generator[Phase, None, SwitchReport]:
        """Activate ``name`` (with the guard) or, for ``None``, roll back; then re-embed the
        gallery's templates with the newly active encoder (the core's
        :func:`~desktop.jobs.switch_encoder`).

        The guard's comparison is not interruptible (seconds); cancelling during the
        re-embedding keeps the switch and the templates done so far (the rest are updated
        when the live engine reloads).

        Raises:
            ActivationRefused: the guard's refusal, with its reason.
        """
        action = "rollback" if name is None else "activate"
        yield Phase("Rolling back…" if name is None else
                    f"Checking {name} against the encoder in use on people set aside during "
                    "training…")
        try:
            outcome = switch_encoder(self.registry, name, gallery, tau=tau,
                                     device=str(pick_device(self.device)), cancel=cancel,
                                     progress=progress)
        except Cancelled as exc:  # the switch stands; the rest is updated later
            report = SwitchReport(action, self.registry.active(), None,
                                  getattr(exc, "report", None), reembed_cancelled=True)
        else:
            report = SwitchReport(action, outcome.version, outcome.check, outcome.reembed)
        report.head_missing = (self.registry.rule() == "verifier"
                               and self.head_for_active()[0] is None)
        return report

    def live_engine(self) -> FaceEngineLike:
        """The Check-in engine for the active encoder (called in a worker thread)."""
        if self._engine_factory is not None:
            return self._engine_factory()
        return self.registry.build_engine()

    def delete(self, name: str) -> None:
        self.registry.delete(name)

    # -- the verification head and the rule ------------------------------------------------
    def train_head(
        self,
        gallery: Any,
        features: Features = "abs",
        *,
        cancel: CancelToken | None = None,
        progress: ProgressCallback = no_progress,
    ) -> HeadReport:
        """Fit the head on the gallery's templates of the active encoder and save it."""
        if gallery is None:
            raise FacestyleError("There is no gallery to train the head on.")
        model_id = self.registry.active_model_id()
        progress(0.05, "reading the gallery")
        g = gallery.embeddings(model_id)
        stale = gallery.count_stale(model_id)
        if cancel is not None:
            cancel.checkpoint()
        if len(np.unique(g.person_ids)) < 2:
            raise FacestyleError(
                "The verification head needs at least 2 people in the gallery, one of them "
                "with 2 or more photos.", "Enrol more people (Enrol page).")
        progress(0.2, "fitting the head")
        head = fit_verifier(g.embeddings, g.person_ids, features, model_id, data={
            "origin": f"gallery:{gallery.path}", "templates": len(g.person_ids),
            "people": len(np.unique(g.person_ids))})
        if cancel is not None:
            cancel.checkpoint()
        head.save()
        progress(0.9, "measuring")
        tau, _ = gallery_tau(gallery)
        try:
            figures = rule_figures(g.embeddings, g.person_ids, tau, head)
        except FacestyleError:
            figures = None
        notes = []
        if stale:
            notes.append(f"{stale} templates made by another encoder were left out (they "
                         "are updated when the encoder in use reloads).")
        progress(1.0, "done")
        return HeadReport(head, figures, stale, notes)

    def set_rule(self, rule: str) -> str:
        """Make ``threshold`` or ``verifier`` the decision rule; returns the rule's name
        as the matcher records it."""
        self.registry.set_rule(rule)
        if rule == "verifier":
            return VerifierRule(load_verifier(model_id=self.registry.active_model_id())).name
        return "threshold"


__all__ = [
    "ActivationRefused",
    "FineTuneSummary",
    "GalleryReadiness",
    "HeadInfo",
    "HeadReport",
    "ModelOverview",
    "ModelService",
    "Phase",
    "RuleFigures",
    "SwitchReport",
    "VersionRow",
    "default_version_name",
    "readiness_of",
    "rule_figures",
]
