"""Switching the encoder in use and re-embedding the gallery with it, as one job.

Templates made by one encoder are never matched against another's descriptors, so a
switch (activation or roll-back) is followed by re-embedding every stored chip with the
encoder now active. One call for the Model page's Activate / Roll back buttons.
"""

from __future__ import annotations

from dataclasses import dataclass

from desktop.face.encoder_versions import ActivationCheck, EncoderRegistry, EncoderVersion
from desktop.face.types import DEFAULT_TAU
from desktop.store.gallery import Gallery
from desktop.store.reembed import ReembedReport, reembed_gallery
from desktop.tasks import CancelToken, ProgressCallback, no_progress


@dataclass
class SwitchOutcome:
    """After :func:`switch_encoder`: what is active now, the guard's comparison (None for a
    rollback) and the gallery re-embedding report (None without a gallery)."""

    version: EncoderVersion
    check: ActivationCheck | None
    reembed: ReembedReport | None = None


def switch_encoder(
    registry: EncoderRegistry,
    name: str | None,
    gallery: Gallery | None = None,
    *,
    tau: float | None = None,
    device: str | None = None,
    cancel: CancelToken | None = None,
    progress: ProgressCallback = no_progress,
) -> SwitchOutcome:
    """Activate version ``name`` (guarded), or roll back when ``name`` is None, then
    re-embed the gallery's templates with the now active encoder, so that embedding
    spaces never mix.

    Args:
        tau: the threshold on d the guard compares at (default: the gallery's setting,
            else 0.36).
        device: where the guard and the re-embedding run (default: the CPU for the guard,
            the registry's choice for the encoder).

    Raises:
        ActivationRefused: the guard found ``name`` worse (nothing changed).
        Cancelled: during re-embedding; the switch stands and finished batches are saved
            (the rest is re-embedded on the next start or switch).
    """
    if tau is None:
        tau = float(gallery.get_setting("tau")) if gallery is not None else DEFAULT_TAU
    check = None
    if name is None:
        version = registry.rollback()
    else:
        progress(0.0, "comparing with the active encoder")
        check = registry.activate(name, tau=tau, device=device or "cpu")
        version = registry.active()
    report = None
    if gallery is not None:
        report = reembed_gallery(gallery, registry.embedder(device=device),
                                 model_version=version.name, cancel=cancel, progress=progress)
    progress(1.0, f"active encoder: {version.name}")
    return SwitchOutcome(version, check, report)
