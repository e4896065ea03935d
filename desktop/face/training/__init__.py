"""Learning f(x): chips by identity, P x K batches, the triplet loss, and fine-tuning.

The pieces, each in its own module:

* :mod:`.data`: :class:`ChipDataset` (chips + identity labels, from a folder per person or
  any ``name -> chips`` mapping), the split by identity and the held-out pairs;
* :mod:`.augment`: flip, jitter, colour and blur, batched on the device;
* :mod:`.sampler`: :class:`PKSampler`, P people x K images per batch;
* :mod:`.triplet`: the triplet loss with ``all`` / ``semi-hard`` / ``batch-hard`` mining;
* :mod:`.finetune`: :func:`train_encoder`, a generator of step and epoch reports.
"""

from desktop.face.training.augment import Augmentation, augment
from desktop.face.training.data import (
    MIN_IDENTITIES,
    MIN_IMAGES_PER_IDENTITY,
    ChipDataset,
    NotEnoughData,
    PairChips,
    SkippedImage,
    dataset_from_folder,
    heldout_pairs,
)
from desktop.face.training.finetune import (
    TRAIN_MODES,
    EpochReport,
    StepReport,
    TrainConfig,
    TrainEvent,
    TrainResult,
    embed_chips,
    evaluate_on_pairs,
    run_training,
    select_trainable,
    split_for_training,
    train_encoder,
)
from desktop.face.training.sampler import PKSampler, parse_batch_shape
from desktop.face.training.triplet import MINING_RULES, TripletStats, triplet_loss

__all__ = [
    "MINING_RULES",
    "MIN_IDENTITIES",
    "MIN_IMAGES_PER_IDENTITY",
    "TRAIN_MODES",
    "Augmentation",
    "ChipDataset",
    "EpochReport",
    "NotEnoughData",
    "PKSampler",
    "PairChips",
    "SkippedImage",
    "StepReport",
    "TrainConfig",
    "TrainEvent",
    "TrainResult",
    "TripletStats",
    "augment",
    "dataset_from_folder",
    "embed_chips",
    "evaluate_on_pairs",
    "heldout_pairs",
    "parse_batch_shape",
    "run_training",
    "select_trainable",
    "split_for_training",
    "train_encoder",
    "triplet_loss",
]
