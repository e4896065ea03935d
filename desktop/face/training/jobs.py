"""Whole jobs for the Model page and the CLI: fine-tune and save a version; fit a head.

:func:`fine_tune_version` is a generator like :func:`train_encoder` (same events) that
also splits the data, loads the base encoder and saves the checkpoint, returning a
:class:`FineTuneOutcome`. A UI runs it in a ``Worker``; the CLI iterates it.

The jobs that also need the gallery (activating a version and re-embedding the gallery,
training on the gallery's chips, fitting the head on its templates) live in
:mod:`desktop.jobs`, above both ``desktop.face`` and ``desktop.store``.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from desktop.errors import FacestyleError
from desktop.face.encoder_versions import EncoderRegistry, EncoderVersion, check_name
from desktop.face.training.data import ChipDataset
from desktop.face.training.finetune import (
    TrainConfig,
    TrainEvent,
    TrainResult,
    embed_chips,
    split_for_training,
    train_encoder,
)
from desktop.face.verifier import Features, VerificationHead, fit_verifier
from desktop.tasks import CancelToken, ProgressCallback, no_progress


@dataclass
class FineTuneOutcome:
    result: TrainResult
    version: EncoderVersion


def fine_tune_version(
    dataset: ChipDataset,
    name: str,
    config: TrainConfig | None = None,
    registry: EncoderRegistry | None = None,
    base: str | None = None,
    *,
    overwrite: bool = False,
    cancel: CancelToken | None = None,
    progress: ProgressCallback = no_progress,
) -> Generator[TrainEvent, None, FineTuneOutcome]:
    """Fine-tune ``base`` (default: the active encoder) on ``dataset`` and save the
    result as version ``name`` (not activated; see :meth:`EncoderRegistry.activate`).

    Raises:
        NotEnoughData: fewer than 3 identities with at least 2 images each.
        FacestyleError: a bad or taken name, bad settings.
        Cancelled: on cancel (nothing is saved).
    """
    config = config or TrainConfig()
    config.validate()
    registry = registry or EncoderRegistry()
    check_name(name)
    if (registry.root / name).exists() and not overwrite:
        raise FacestyleError(f"An encoder version named {name!r} already exists.",
                             "Choose another name, or delete the old version first.")
    train, heldout = split_for_training(dataset, config)
    base_version = registry.get(base) if base else registry.active()
    model = registry.load(base_version.name)
    result = yield from train_encoder(model, train, heldout, config, cancel=cancel,
                                      progress=progress)
    version = registry.save(
        name, model, base=base_version.name, heldout=heldout,
        metrics=result.metrics_json(), data={**dataset.summary(), **result.data},
        train=config.to_dict(), log_lines=[h.to_json() for h in result.history],
        extra={"device": result.device, "precision": result.precision,
               "seconds": round(result.seconds, 2),
               "trainable_parameters": result.trainable_parameters,
               "improved": result.improved},
        overwrite=overwrite)
    return FineTuneOutcome(result, version)


def fit_verifier_on_chips(
    dataset: ChipDataset,
    registry: EncoderRegistry | None = None,
    encoder: str | None = None,
    features: Features = "abs",
    *,
    device: str = "cpu",
    seed: int = 0,
    cancel: CancelToken | None = None,
    progress: ProgressCallback = no_progress,
) -> VerificationHead:
    """Embed the chips with an encoder (default: the active) and fit the head on them.

    For the gallery, whose templates already hold current descriptors, call
    :func:`desktop.face.verifier.fit_verifier` on those directly.
    """
    registry = registry or EncoderRegistry()
    version = registry.get(encoder) if encoder else registry.active()
    model = registry.load(version.name)
    chunks = []
    step = 64
    for start in range(0, len(dataset), step):
        if cancel is not None:
            cancel.checkpoint()
        chunks.append(embed_chips(model, dataset.chips[start:start + step], device))
        progress(min(1.0, (start + step) / max(len(dataset), 1)), "embedding")
    emb = np.concatenate(chunks) if chunks else np.zeros((0, 128), np.float32)
    return fit_verifier(emb, dataset.labels, features, version.model_id, seed=seed,
                        data=dataset.summary())
