"""The gallery as training data: its people's stored chips for fine-tuning the encoder,
and its templates' descriptors for fitting the verification head."""

from __future__ import annotations

import collections

import numpy as np

from desktop.face.encoder_versions import EncoderRegistry
from desktop.face.training.data import MIN_IMAGES_PER_IDENTITY, ChipDataset, SkippedImage
from desktop.face.verifier import Features, VerificationHead, fit_verifier
from desktop.store.chips import decode_chip
from desktop.store.gallery import Gallery


def dataset_from_gallery(gallery: Gallery,
                         min_images: int = MIN_IMAGES_PER_IDENTITY) -> ChipDataset:
    """The gallery's people with at least ``min_images`` templates, from their stored
    (150, 150, 3) uint8 chips.

    Chips are encoder-independent, so templates of every model_id are used. Unreadable
    chips are skipped and listed; two people who share a display name stay apart
    ("Name #id").
    """
    people = gallery.people()
    taken = collections.Counter(p.name for p in people)
    names = {p.id: p.name if taken[p.name] == 1 else f"{p.name} #{p.id}" for p in people}
    identities: dict[str, list[np.ndarray]] = {name: [] for name in names.values()}
    sources: dict[str, list[str]] = {name: [] for name in names.values()}
    skipped: list[SkippedImage] = []
    for template in gallery.templates(with_chips=True):
        name = names.get(template.person_id)
        if name is None:
            continue
        try:
            chip = decode_chip(template.chip_jpeg)
        except ValueError as exc:
            skipped.append(SkippedImage(f"{name} template {template.id}", str(exc)))
            continue
        identities[name].append(chip)
        sources[name].append(f"template:{template.id}")
    return ChipDataset.from_identities(identities, origin=f"gallery:{gallery.path}",
                                       sources=sources, skipped=skipped, min_images=min_images)


def fit_verifier_on_gallery(
    gallery: Gallery,
    registry: EncoderRegistry | None = None,
    features: Features = "abs",
    *,
    negatives_per_positive: float = 3.0,
    seed: int = 0,
    save: bool = True,
) -> VerificationHead:
    """Fit the head on the gallery's templates of the active encoder (all same-person
    pairs, sampled different-person pairs, balanced) and save it for that encoder.

    Templates not yet re-embedded by the active encoder are left out (``data["stale"]``).
    """
    registry = registry or EncoderRegistry()
    model_id = registry.active_model_id()
    g = gallery.embeddings(model_id)
    data = {"origin": f"gallery:{gallery.path}", "templates": len(g.person_ids),
            "people": len(np.unique(g.person_ids)),
            "stale": int(gallery.count_stale(model_id))}
    head = fit_verifier(g.embeddings, g.person_ids, features, model_id,
                        negatives_per_positive=negatives_per_positive, seed=seed, data=data)
    if save:
        head.save()
    return head
