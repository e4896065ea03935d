"""P x K batch construction."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from desktop.errors import FacestyleError
from desktop.face.training.sampler import PKSampler, parse_batch_shape


def labels_with(counts: list[int]) -> np.ndarray:
    return np.concatenate([np.full(n, i) for i, n in enumerate(counts)])


def test_each_batch_has_p_distinct_people_with_k_images_each():
    labels = labels_with([6, 5, 7, 4, 9, 5, 6, 8])
    sampler = PKSampler(labels, p=4, k=3, seed=1)
    for _ in range(50):
        idx = sampler.batch()
        assert idx.shape == (12,)
        people = labels[idx].reshape(4, 3)
        assert all(len(set(row)) == 1 for row in people)  # K consecutive of one person
        assert len({row[0] for row in people}) == 4  # P distinct people
        for row in idx.reshape(4, 3):
            assert len(set(row)) == 3  # enough images: no repeats within a person


def test_person_with_fewer_than_k_images_repeats_but_uses_all_of_them():
    labels = labels_with([2, 6, 6])
    sampler = PKSampler(labels, p=3, k=4, seed=0)
    idx = sampler.batch()
    small = [i for i in idx if labels[i] == 0]
    assert len(small) == 4
    assert set(small) == {0, 1}


def test_p_is_capped_at_the_number_of_people():
    sampler = PKSampler(labels_with([3, 3, 3]), p=8, k=2)
    assert sampler.p == 3
    assert sampler.batch_size == 6


def test_identities_are_visited_evenly_and_reproducibly():
    labels = labels_with([4] * 10)
    a = PKSampler(labels, p=5, k=2, seed=7)
    seen = Counter(int(labels[i]) for _ in range(20) for i in a.batch()[::2])
    assert set(seen) == set(range(10))
    assert max(seen.values()) - min(seen.values()) <= 1  # queue-based: each person 10 times
    b = PKSampler(labels, p=5, k=2, seed=7)
    a2 = PKSampler(labels, p=5, k=2, seed=7)
    assert all(np.array_equal(a2.batch(), b.batch()) for _ in range(5))


def test_epoch_covers_the_dataset_about_once():
    sampler = PKSampler(labels_with([5] * 8), p=4, k=2)
    assert sampler.batches_per_epoch == 5  # 40 images / 8 per batch
    assert len(list(sampler.epoch())) == 5


def test_one_identity_is_refused():
    with pytest.raises(FacestyleError):
        PKSampler(np.zeros(5, int), p=2, k=2)


def test_batch_shape_parsing():
    assert parse_batch_shape("8x4") == (8, 4)
    assert parse_batch_shape("16X2") == (16, 2)
    for bad in ("8", "1x4", "8x1", "axb", "2x3x4"):
        with pytest.raises(FacestyleError):
            parse_batch_shape(bad)
