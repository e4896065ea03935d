"""Re-embedding stored chips with a new encoder, so embedding spaces never mix.

Every template records the ``model_id`` of the encoder that made it, and matching only
ever uses templates of the active encoder (:meth:`Gallery.matcher`). When the encoder
changes (a new release, a fine-tuned version), :func:`reembed_gallery` runs each stale
template's stored 150x150 chip through the new encoder and replaces its embedding.

Work is done in batches; each batch is embedded *outside* the database lock and then
written in one transaction. Cancelling (or a crash) between batches leaves a consistent
database: every template is wholly old or wholly new, and the old ones are simply not
used by the new matcher until the next run finishes them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from desktop.errors import Cancelled
from desktop.face.types import EMBEDDING_DIM, FaceEngineLike
from desktop.store.chips import decode_chip
from desktop.store.gallery import Gallery
from desktop.tasks import CancelToken, ProgressCallback, no_progress

log = logging.getLogger(__name__)


@dataclass
class ReembedReport:
    model_id: str
    total: int  # stale templates found at the start
    done: int = 0  # re-embedded and saved
    failed: list[tuple[int, str]] = field(default_factory=list)  # (template id, reason)
    cancelled: bool = False

    @property
    def remaining(self) -> int:
        return self.total - self.done - len(self.failed)


def reembed_gallery(gallery: Gallery, engine: FaceEngineLike, *, model_version: str = "",
                    batch_size: int = 32, progress: ProgressCallback = no_progress,
                    cancel: CancelToken | None = None) -> ReembedReport:
    """Re-embed every template whose model_id is not ``engine.model_id``.

    Progress goes from 0 to 1 with "k/n templates" messages. Cancellation is checked
    between batches; on cancel, finished batches stay saved and
    :class:`~desktop.errors.Cancelled` is raised (the report so far is on the
    exception's ``report`` attribute). A chip that cannot be decoded or embedded is
    listed in ``failed`` and left untouched (it stays stale, so it is never matched).
    """
    model_id = str(engine.model_id)
    ids = gallery.stale_template_ids(model_id)
    report = ReembedReport(model_id, len(ids))
    if not ids:
        progress(1.0, "all templates are up to date")
        return report
    log.info("re-embedding %d templates with %s", len(ids), model_id)
    progress(0.0, f"0/{len(ids)} templates")
    batch_size = max(1, int(batch_size))
    for start in range(0, len(ids), batch_size):
        if cancel is not None:
            try:
                cancel.checkpoint()
            except Cancelled as exc:
                report.cancelled = True
                exc.report = report  # type: ignore[attr-defined]
                raise
        batch = gallery.stale_chips(ids[start:start + batch_size])
        good: list[tuple[int, str]] = []
        chips = []
        for tid, old_model, jpeg in batch:
            try:
                chips.append(decode_chip(jpeg))
                good.append((tid, old_model))
            except ValueError as exc:
                report.failed.append((tid, str(exc)))
        if chips:
            vectors = _embed(engine, np.stack(chips), [t for t, _ in good], report)
            if vectors is not None:
                updates = [(tid, old, vec) for (tid, old), vec in zip(good, vectors, strict=True)]
                report.done += gallery.replace_embeddings(updates, model_id, model_version)
        finished = min(start + batch_size, len(ids))
        progress(finished / len(ids), f"{finished}/{len(ids)} templates")
    return report


def _embed(engine: FaceEngineLike, chips: np.ndarray, ids: list[int],
           report: ReembedReport) -> np.ndarray | None:
    try:
        out = np.asarray(engine.embed(chips), dtype=np.float32)
    except Exception as exc:  # one bad batch must not lose the rest of the run
        log.exception("re-embedding failed for templates %s", ids)
        report.failed.extend((tid, f"the encoder failed: {exc}") for tid in ids)
        return None
    if out.shape != (len(ids), EMBEDDING_DIM) or not np.isfinite(out).all():
        report.failed.extend((tid, f"the encoder returned {out.shape} / non-finite values")
                             for tid in ids)
        return None
    return out
