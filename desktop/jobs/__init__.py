"""Work that spans the face engine and the gallery: the layer above both. No Qt.

``desktop.store`` builds on ``desktop.face`` (templates hold its descriptors, the matcher
is its own), so ``desktop.face`` never imports the store (an import-linter contract keeps
it so). What needs both lives here:

* :mod:`.encoder_switch`: activate or roll back an encoder version, then re-embed the
  gallery's templates with it (:func:`switch_encoder`);
* :mod:`.gallery_training`: the gallery as training data (:func:`dataset_from_gallery`)
  and the verification head fitted on its templates (:func:`fit_verifier_on_gallery`).

Neither ``desktop.face`` nor ``desktop.store`` imports this package; the UI and the
commands call it.
"""

from desktop.jobs.encoder_switch import SwitchOutcome, switch_encoder
from desktop.jobs.gallery_training import dataset_from_gallery, fit_verifier_on_gallery

__all__ = ["SwitchOutcome", "dataset_from_gallery", "fit_verifier_on_gallery", "switch_encoder"]
