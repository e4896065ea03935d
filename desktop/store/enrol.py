"""Enrolment from image files: one face per image, checked, embedded, saved atomically.

Used by ``facestyle gallery enroll`` and by the enrolment dialog's "import photos". The
steps are split so a dialog can show the review before saving:

1. :func:`examine_images` loads each image and detects faces; an image is refused, with a
   sentence naming it, when it cannot be read, has no face, has several faces, or its
   face is smaller than ``min_face_px``;
2. :func:`similarity_problems` compares the new descriptors with each other (all photos
   should show the same person) and with the gallery (the "looks like X, d = ..." check);
3. :func:`enrol_from_images` does both and saves the person with all templates in one
   transaction (:meth:`Gallery.enrol` / :meth:`Gallery.add_templates`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from desktop.errors import ImageError
from desktop.face.matching import Matcher, Neighbour
from desktop.face.types import DEFAULT_TAU, Face, FaceEngineLike, squared_distance
from desktop.imageio import load_rgb
from desktop.store.errors import EnrolmentError
from desktop.store.gallery import Gallery
from desktop.store.records import NewTemplate, Person
from desktop.tasks import CancelToken, ProgressCallback, no_progress

#: Faces narrower than this (pixels of the original image) are refused: too little detail
#: for a reliable template. The live dialog asks for 80 px; photos are often tighter.
DEFAULT_MIN_FACE_PX = 60


@dataclass
class ImageShot:
    """One examined image: its face (chip and descriptor filled) or why it was refused."""

    path: Path
    face: Face | None = None
    problem: str | None = None
    n_faces: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class EnrolmentResult:
    person: Person
    template_ids: list[int]
    used: list[Path]  # images that gave a template
    skipped: list[str] = field(default_factory=list)  # one sentence per refused image
    warnings: list[str] = field(default_factory=list)  # look-alike/consistency notes (forced)
    created: bool = True  # False when photos were added to an existing person


def examine_images(engine: FaceEngineLike, paths: Sequence[str | Path], *,
                   min_face_px: int = DEFAULT_MIN_FACE_PX,
                   progress: ProgressCallback = no_progress,
                   cancel: CancelToken | None = None) -> list[ImageShot]:
    """Load, detect and embed each image; exactly one face of ``min_face_px`` or more.

    Every returned shot either has ``face`` with ``chip`` and ``descriptor`` set, or a
    ``problem`` sentence naming the file.
    """
    shots = []
    total = max(1, len(paths))
    for i, raw in enumerate(paths):
        if cancel is not None:
            cancel.checkpoint()
        path = Path(raw)
        shot = ImageShot(path)
        shots.append(shot)
        progress(i / total, f"examining {path.name}")
        try:
            faces = engine.detect(load_rgb(path))
        except ImageError as exc:  # unreadable, corrupt, too large, too small to search
            shot.problem = exc.message if path.name in exc.message else \
                f"{path.name}: {exc.message}"
            continue
        shot.n_faces = len(faces)
        if not faces:
            shot.problem = f"{path.name}: no face found."
            continue
        if len(faces) > 1:
            shot.problem = (f"{path.name}: {len(faces)} faces found; use a photo with only "
                            "the person to enrol.")
            continue
        face = faces[0]
        size = min(face.box[2], face.box[3])
        if size < min_face_px:
            shot.problem = (f"{path.name}: the face is too small ({size} px, needs "
                            f"{min_face_px} px); use a closer or larger photo.")
            continue
        if face.chip is None:
            shot.problem = f"{path.name}: the face could not be aligned."
            continue
        shot.face = face
    good = [s for s in shots if s.ok]
    if good:
        vectors = np.asarray(engine.embed(np.stack([s.face.chip for s in good])), np.float32)
        for s, v in zip(good, vectors, strict=True):
            s.face.descriptor = v
    progress(1.0, f"{len(good)}/{len(shots)} images usable")
    return shots


def similarity_problems(descriptors: np.ndarray, names: Sequence[str], matcher: Matcher | None,
                        *, tau: float = DEFAULT_TAU, exclude_person_id: int | None = None
                        ) -> tuple[list[str], list[Neighbour]]:
    """Sentences for enrolment photos that (a) look like someone already enrolled or
    (b) do not look like each other; plus the look-alike neighbours found (best d each).

    ``descriptors`` (K, 128) belong to the new person, ``names`` labels each (file names).
    """
    problems: list[str] = []
    lookalikes: dict[int, Neighbour] = {}
    if matcher is not None and len(matcher):
        for vec in descriptors:
            for nb in matcher.nearest_people(vec, k=3):
                if nb.person_id == exclude_person_id or nb.d > tau:
                    continue
                if nb.person_id not in lookalikes or nb.d < lookalikes[nb.person_id].d:
                    lookalikes[nb.person_id] = nb
    for nb in sorted(lookalikes.values(), key=lambda n: n.d):
        problems.append(f"looks like {nb.name} (already enrolled), d = {nb.d:.3f} <= tau "
                        f"{tau:.2f}")
    for i in range(len(descriptors)):
        for j in range(i + 1, len(descriptors)):
            d = float(squared_distance(descriptors[i], descriptors[j]))
            if d > tau:
                problems.append(f"{names[j]} does not look like {names[i]} (d = {d:.3f} > tau "
                                f"{tau:.2f}); are they the same person?")
    return problems, sorted(lookalikes.values(), key=lambda n: n.d)


def enrol_from_images(gallery: Gallery, engine: FaceEngineLike, name: str,
                      paths: Sequence[str | Path], *, employee_id: str | None = None,
                      add: bool = False, skip_bad: bool = False, force: bool = False,
                      model_version: str = "", min_face_px: int = DEFAULT_MIN_FACE_PX,
                      progress: ProgressCallback = no_progress,
                      cancel: CancelToken | None = None) -> EnrolmentResult:
    """Enrol ``name`` from photos (one template per usable photo), atomically.

    Args:
        add: add the photos to the existing person called ``name`` instead of creating
            one (without it, an existing name is refused).
        skip_bad: enrol from the usable photos and report the others (default: refuse
            the whole enrolment if any photo is unusable).
        force: save even when a photo looks like someone already enrolled (d <= tau) or
            the photos do not look like each other.

    Raises:
        EnrolmentError: with one ``problems`` sentence per refused image or failed check.
        DuplicatePersonError / PersonNotFoundError / AmbiguousNameError: name problems.
    """
    if not paths:
        raise EnrolmentError("No images given.", "Give one or more photos of the person.")
    existing = gallery.person_by_name(name) if add else None
    if not add and gallery.find_people(name):
        raise EnrolmentError(f"'{name}' is already enrolled.",
                             "Use --add to add these photos to them, or choose another name.")
    shots = examine_images(engine, paths, min_face_px=min_face_px, progress=progress,
                           cancel=cancel)
    bad = [s.problem for s in shots if not s.ok]
    good = [s for s in shots if s.ok]
    if not good:
        raise EnrolmentError(f"None of the images can be used to enrol {name}.",
                             "Use clear photos showing one face each.", bad)
    if bad and not skip_bad:
        raise EnrolmentError(f"{len(bad)} of {len(shots)} images cannot be used; nothing "
                             "was saved.", "Remove them, or pass --skip-bad to enrol from the "
                             "others.", bad)
    tau = float(gallery.get_setting("tau"))
    vectors = np.stack([s.face.descriptor for s in good])
    problems, _ = similarity_problems(
        vectors, [s.path.name for s in good], gallery.matcher(engine.model_id, tau=tau),
        tau=tau, exclude_person_id=existing.id if existing else None)
    if problems and not force:
        raise EnrolmentError(f"Not enrolling {name}: please check these photos.",
                             "If this is right (e.g. look-alike relatives), pass --force.",
                             problems)
    templates = [NewTemplate(s.face.chip, s.face.descriptor, engine.model_id, model_version,
                             "file") for s in good]
    if cancel is not None:
        cancel.checkpoint()
    if existing is not None:
        ids = gallery.add_templates(existing.id, templates)
        person = gallery.person(existing.id)
    else:
        person = gallery.enrol(name, templates, employee_id=employee_id)
        ids = [t.id for t in gallery.templates(person.id)]
    return EnrolmentResult(person, ids, [s.path for s in good], bad, problems if force else [],
                           created=existing is None)
