"""Encoder versions: the built-in dlib encoder and fine-tuned checkpoints; which is active.

Layout, under ``user_dirs().data / "encoders"``::

    state.json              {"active": NAME, "history": [older actives...], "rule": ...}
    NAME/weights.pt         the full state_dict (torch.save; loaded with weights_only)
    NAME/meta.json          base model, data summary, metrics, training settings, date
    NAME/heldout.npz        the held-out pairs (chips) the guard compares encoders on
    NAME/train_log.jsonl    one JSON line per epoch

``dlib-resnet-v1`` (:data:`BUILTIN`) is always listed and can always be rolled back to.

**Activation guard.** :meth:`EncoderRegistry.activate` scores the candidate and the active
encoder on the same held-out pairs (the candidate's own; for the built-in, the active
version's) and refuses, with both sets of numbers, when the candidate is worse: lower
accuracy at tau, or equal accuracy and lower ROC AUC. :meth:`rollback` returns to the
previous active version without the guard; it undoes an activation, and is what a manager
reaches for when a change misbehaves in practice.

Each fine-tuned version has a ``model_id`` of ``NAME@<first 8 hex of the weights' SHA-256>``,
so templates embedded by a deleted-and-retrained version of the same name are never taken
for current. After a switch the caller re-embeds the gallery (see ``desktop.store``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from desktop.errors import FacestyleError, ModelFileError
from desktop.face.evaluation import PairMetrics
from desktop.face.training.data import PairChips
from desktop.face.training.finetune import evaluate_on_pairs
from desktop.face.types import DEFAULT_TAU
from desktop.paths import user_dirs

log = logging.getLogger(__name__)

BUILTIN = "dlib-resnet-v1"
FORMAT_VERSION = 1
RULES = ("threshold", "verifier")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

ModuleFactory = Callable[[], nn.Module]


class ActivationRefused(FacestyleError):
    """The guard refused a candidate that scores worse than the active encoder."""

    def __init__(self, message: str, hint: str | None, check: ActivationCheck) -> None:
        super().__init__(message, hint)
        self.check = check


@dataclass
class EncoderVersion:
    """One encoder the app can use. ``meta`` is the checkpoint's metadata (empty for the
    built-in); ``path`` its folder (None for the built-in)."""

    name: str
    model_id: str
    builtin: bool = False
    base: str | None = None
    created: str | None = None  # ISO 8601, UTC
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def heldout_path(self) -> Path | None:
        return self.path / "heldout.npz" if self.path else None

    @property
    def metrics(self) -> dict[str, Any]:
        """``{"baseline": {...}, "best": {...}, "best_epoch": n, ...}`` from training."""
        return dict(self.meta.get("metrics", {}))

    def describe(self) -> str:
        if self.builtin:
            return f"{self.name} (built-in: dlib's ResNet, as shipped)"
        best = self.metrics.get("final") or self.metrics.get("best", {})
        acc, auc = best.get("accuracy"), best.get("roc_auc")
        figures = (f"held-out accuracy {acc:.3f}, AUC {auc:.3f}"
                   if isinstance(acc, float) and isinstance(auc, float) else "no figures")
        return f"{self.name} (from {self.base}, {self.created or '?'}; {figures})"


@dataclass
class ActivationCheck:
    """The guard's comparison of a candidate with the active encoder on the same pairs."""

    candidate: str
    current: str
    allowed: bool
    reason: str
    candidate_metrics: PairMetrics | None = None
    current_metrics: PairMetrics | None = None
    pairs: str = ""  # which held-out pairs were used


@dataclass
class ModelState:
    """What is active, what was active before (newest last), and the decision rule."""

    active: str = BUILTIN
    history: list[str] = field(default_factory=list)
    rule: str = "threshold"


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _default_pretrained() -> nn.Module:
    from desktop.face.encoder import FaceEncoder

    return FaceEncoder.from_dlib()


def _default_architecture() -> nn.Module:
    from desktop.face.encoder import FaceEncoder

    return FaceEncoder()


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise FacestyleError(
            f"{name!r} is not a usable encoder name.",
            "Use 1 to 64 letters, digits, dots, dashes or underscores, starting with a "
            "letter or digit (e.g. office-2024-06).",
        )
    if name == BUILTIN:
        raise FacestyleError(f"{BUILTIN} is the built-in encoder's name; choose another.")
    return name


class EncoderRegistry:
    """Lists, saves, loads, activates and rolls back encoder versions.

    Args:
        root: the folder of versions (default ``user_dirs().data / "encoders"``).
        pretrained: builds the built-in encoder (default ``FaceEncoder.from_dlib``).
        architecture: builds an untrained encoder of the same architecture, into which a
            checkpoint's weights are loaded (default ``FaceEncoder()``).
    """

    def __init__(self, root: Path | None = None, pretrained: ModuleFactory | None = None,
                 architecture: ModuleFactory | None = None) -> None:
        self.root = Path(root) if root is not None else user_dirs().data / "encoders"
        self._pretrained = pretrained or _default_pretrained
        self._architecture = architecture or _default_architecture

    # -- state -------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def state(self) -> ModelState:
        """The saved state; a missing or unreadable file means the built-in is active."""
        try:
            raw = json.loads(self.state_path.read_text(encoding="utf-8"))
            state = ModelState(str(raw.get("active", BUILTIN)),
                               [str(v) for v in raw.get("history", [])],
                               str(raw.get("rule", "threshold")))
        except FileNotFoundError:
            return ModelState()
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("unreadable %s (%s); using the built-in encoder", self.state_path, exc)
            return ModelState()
        if state.active != BUILTIN and not (self.root / state.active / "meta.json").is_file():
            log.warning("active encoder %s is missing; using the built-in", state.active)
            state.active = BUILTIN
        if state.rule not in RULES:
            state.rule = "threshold"
        return state

    def _write_state(self, state: ModelState) -> None:
        _atomic_write_text(self.state_path, json.dumps(
            {"active": state.active, "history": state.history[-50:], "rule": state.rule},
            indent=2))

    # -- listing -----------------------------------------------------------------------
    def builtin(self) -> EncoderVersion:
        return EncoderVersion(BUILTIN, BUILTIN, builtin=True)

    def _read_version(self, folder: Path) -> EncoderVersion:
        meta_path = folder / "meta.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            return EncoderVersion(
                name=folder.name, model_id=str(meta["model_id"]), base=meta.get("base"),
                created=meta.get("created"), meta=meta, path=folder)
        except FileNotFoundError as exc:
            raise FacestyleError(f"There is no encoder version named {folder.name!r}.",
                                 "'facestyle encoders list' shows the versions there are."
                                 ) from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelFileError(
                f"The metadata of encoder version {folder.name!r} ({meta_path}) is damaged.",
                f"Delete the folder {folder} and train it again.") from exc

    def list(self) -> list[EncoderVersion]:
        """The built-in first, then saved versions oldest first (damaged ones left out)."""
        versions = []
        if self.root.is_dir():
            for folder in sorted(p for p in self.root.iterdir() if p.is_dir()
                                 and not p.name.startswith(".")):
                try:
                    versions.append(self._read_version(folder))
                except FacestyleError as exc:
                    log.warning("skipping encoder version: %s", exc.message)
        versions.sort(key=lambda v: (v.created or "", v.name))
        return [self.builtin(), *versions]

    def get(self, name: str) -> EncoderVersion:
        if name == BUILTIN:
            return self.builtin()
        if not _NAME.match(name or ""):
            raise FacestyleError(f"There is no encoder version named {name!r}.")
        return self._read_version(self.root / name)

    def active(self) -> EncoderVersion:
        return self.get(self.state().active)

    def active_model_id(self) -> str:
        """The model id templates must carry to be current (``dlib-resnet-v1`` by default)."""
        return self.active().model_id

    def previous(self) -> EncoderVersion | None:
        """What :meth:`rollback` would return to, or None."""
        for name in reversed(self.state().history):
            try:
                return self.get(name)
            except FacestyleError:
                continue
        return None

    # -- weights -----------------------------------------------------------------------
    def load(self, name: str | None = None) -> nn.Module:
        """A fresh encoder module for version ``name`` (default: the active), in eval mode."""
        version = self.get(name) if name else self.active()
        if version.builtin:
            model = self._pretrained()
        else:
            assert version.path is not None
            weights = version.path / "weights.pt"
            model = self._architecture()
            try:
                state = torch.load(weights, map_location="cpu", weights_only=True)
                model.load_state_dict(state)
            except FileNotFoundError as exc:
                raise ModelFileError(f"Encoder version {version.name!r} has no weights file "
                                     f"({weights}).", "Delete it and train it again.") from exc
            except Exception as exc:  # torch raises many kinds for a damaged file
                raise ModelFileError(
                    f"The weights of encoder version {version.name!r} ({weights}) cannot be "
                    f"loaded: {exc}", "Delete it and train it again.") from exc
        for p in model.parameters():
            p.requires_grad_(False)
        return model.eval()

    def heldout(self, version: EncoderVersion) -> PairChips | None:
        path = version.heldout_path
        if path is None or not path.is_file():
            return None
        try:
            return PairChips.load(path)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("unreadable held-out pairs %s: %s", path, exc)
            return None

    def save(self, name: str, model: nn.Module, *, base: str, heldout: PairChips,
             metrics: dict[str, Any], data: dict[str, Any], train: dict[str, Any],
             log_lines: list[dict[str, Any]] | None = None, extra: dict[str, Any] | None = None,
             overwrite: bool = False) -> EncoderVersion:
        """Write a new version (atomically: a folder appears complete or not at all)."""
        check_name(name)
        target = self.root / name
        if target.exists() and not overwrite:
            raise FacestyleError(f"An encoder version named {name!r} already exists.",
                                 "Choose another --out name, or delete the old version first.")
        if overwrite and name == self.state().active:
            raise FacestyleError(f"{name!r} is the active encoder and cannot be overwritten.",
                                 "Activate or roll back to another version first.")
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{name}."))
        try:
            state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
            torch.save(state, tmp / "weights.pt")
            digest = hashlib.sha256((tmp / "weights.pt").read_bytes()).hexdigest()
            heldout.save(tmp / "heldout.npz")
            meta = {
                "format": FORMAT_VERSION, "name": name, "model_id": f"{name}@{digest[:8]}",
                "base": base, "base_model_id": self.get(base).model_id, "created": _now(),
                "weights_sha256": digest, "train": train, "data": data, "metrics": metrics,
                "heldout": heldout.description, **(extra or {}),
            }
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
            with open(tmp / "train_log.jsonl", "w", encoding="utf-8") as fh:
                for line in log_lines or []:
                    fh.write(json.dumps(line) + "\n")
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.get(name)

    def delete(self, name: str) -> None:
        version = self.get(name)
        if version.builtin:
            raise FacestyleError("The built-in encoder cannot be deleted.")
        state = self.state()
        if state.active == name:
            raise FacestyleError(f"{name!r} is the active encoder.",
                                 "Activate or roll back to another version first.")
        assert version.path is not None
        shutil.rmtree(version.path)
        state.history = [h for h in state.history if h != name]
        self._write_state(state)

    # -- switching ---------------------------------------------------------------------
    def check_activation(self, name: str, tau: float = DEFAULT_TAU,
                         device: str | torch.device = "cpu") -> ActivationCheck:
        """Compare ``name`` with the active encoder on held-out pairs (see module doc)."""
        candidate = self.get(name)
        current = self.active()
        if candidate.name == current.name:
            return ActivationCheck(name, current.name, True, f"{name} is already active.")
        pairs = self.heldout(candidate) if not candidate.builtin else None
        source = candidate
        if pairs is None:
            pairs, source = self.heldout(current), current
        if pairs is None:
            return ActivationCheck(
                name, current.name, False,
                f"Neither {name} nor the active {current.name} has held-out pairs to compare "
                "them on, so the guard cannot tell which is better.")
        cand = evaluate_on_pairs(self.load(name), pairs, tau, device)
        curr = evaluate_on_pairs(self.load(current.name), pairs, tau, device)
        where = f"{len(pairs)} held-out pairs of {source.name} ({pairs.description})"

        def figures(m: PairMetrics) -> str:
            return f"accuracy {m.accuracy:.4f} at tau {tau:g}, ROC AUC {m.roc_auc:.4f}"

        allowed = cand.score_key() >= curr.score_key()
        verdict = "not worse than" if allowed else "worse than"
        reason = (f"{name}: {figures(cand)}; active {current.name}: {figures(curr)}, on "
                  f"{where}. {name} is {verdict} the active encoder.")
        return ActivationCheck(name, current.name, allowed, reason, cand, curr, where)

    def activate(self, name: str, tau: float = DEFAULT_TAU,
                 device: str | torch.device = "cpu") -> ActivationCheck:
        """Make ``name`` active if the guard allows it; raise :class:`ActivationRefused`
        (message with both sets of numbers) if not. The old active is remembered."""
        check = self.check_activation(name, tau, device)
        if not check.allowed:
            raise ActivationRefused(
                f"Not activating {name}: {check.reason}",
                "Train longer or on more people, or keep the current encoder.", check)
        state = self.state()
        if state.active != name:
            state.history.append(state.active)
            state.active = name
            self._write_state(state)
        return check

    def rollback(self) -> EncoderVersion:
        """Return to the previously active version (no guard); returns it."""
        state = self.state()
        while state.history:
            name = state.history.pop()
            try:
                version = self.get(name)
            except FacestyleError:
                continue  # deleted since; go further back
            state.active = version.name
            self._write_state(state)
            return version
        raise FacestyleError("There is no earlier encoder to roll back to.",
                             f"The active encoder is {state.active}.")

    # -- using a version ---------------------------------------------------------------
    def embedder(self, name: str | None = None, device: str | torch.device | None = None,
                 precision: str = "fp32") -> VersionEmbedder:
        """Chips -> descriptors with version ``name`` (default: the active), tagged with its
        model id: what ``desktop.store.reembed_gallery`` needs after a switch."""
        version = self.get(name) if name else self.active()
        return VersionEmbedder(self.load(version.name), version.model_id, device, precision)

    def build_engine(self, name: str | None = None, device: str = "auto", **options):
        """A full face engine (detect, align, embed) whose encoder is version ``name``
        (default: the active) and whose ``model_id`` is that version's. ``options`` go to
        :class:`desktop.face.api.FaceEngine` (e.g. ``detector="haar"``, ``tta=True``)."""
        from desktop.face.api import FaceEngine

        version = self.get(name) if name else self.active()
        encoder = None if version.builtin else self.load(version.name)
        return FaceEngine(encoder=encoder, model_id=version.model_id, device=str(device),
                          **options)

    def decision_rule(self, tau: float = DEFAULT_TAU, model_id: str | None = None, *,
                      strict: bool = True):
        """The Matcher's rule in use: ``ThresholdRule(tau)``, or the verification head
        trained for ``model_id`` (default: the active encoder) when the rule is
        ``verifier``.

        A head judges only descriptors of its own encoder. When it is missing or damaged,
        ``strict`` raises; otherwise (the live check-in) the threshold decides, with a
        logged warning, so recognition never stops over a missing head.
        """
        from desktop.face.matching import ThresholdRule

        if self.rule() != "verifier":
            return ThresholdRule(tau)
        from desktop.face.verifier import VerifierRule, load_verifier

        try:
            return VerifierRule(load_verifier(model_id=model_id or self.active_model_id()))
        except FacestyleError as exc:
            if strict:
                raise
            log.warning("using the threshold rule: %s", exc.message)
            return ThresholdRule(tau)

    def rule(self) -> str:
        """The decision rule in use: ``threshold`` (d <= tau) or ``verifier`` (the head)."""
        return self.state().rule

    def set_rule(self, rule: str) -> None:
        """Choose the decision rule; ``verifier`` needs a head trained for the active
        encoder (see ``desktop.face.verifier``)."""
        if rule not in RULES:
            raise FacestyleError(f"Unknown decision rule {rule!r}; use threshold or verifier.")
        if rule == "verifier":
            from desktop.face.verifier import load_verifier

            load_verifier(model_id=self.active_model_id())  # raises when there is none
        state = self.state()
        state.rule = rule
        self._write_state(state)


class VersionEmbedder:
    """An encoder version as a minimal engine: ``model_id`` and ``embed(chips)``.

    dlib's :class:`~desktop.face.encoder.FaceEncoder` runs through its fast
    ``ChipEmbedder`` (folded affines, batched); any other module through
    :func:`~desktop.face.training.finetune.embed_chips`.
    """

    def __init__(self, model: nn.Module, model_id: str, device: str | torch.device | None = None,
                 precision: str = "fp32") -> None:
        from desktop.device import pick_device

        self.model_id = model_id
        self.device = pick_device("auto") if device is None else torch.device(device)
        self.model = model.to(self.device).eval()
        self._fast = None
        try:
            from desktop.face.encoder import ChipEmbedder, FaceEncoder

            if isinstance(model, FaceEncoder):
                self._fast = ChipEmbedder(self.model, precision=precision)
        except ImportError:  # pragma: no cover - the encoder module ships with the app
            pass

    def embed(self, chips) -> np.ndarray:
        """(N, H, W, 3) uint8 chips -> (N, D) float32 descriptors."""
        from desktop.face.training.finetune import embed_chips

        chips = np.asarray(chips)
        if chips.ndim == 3:
            chips = chips[None]
        if self._fast is not None:
            return self._fast(chips)
        return embed_chips(self.model, chips, self.device)
