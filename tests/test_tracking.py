"""IoU tracker and votes, on synthetic box sequences."""

from __future__ import annotations

import numpy as np
import pytest

from desktop.face.tracking import IoUTracker, Track, Vote, greedy_match, iou_matrix


def test_iou_of_identical_disjoint_and_half_overlapping_boxes():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [20, 20, 5, 5], [5, 0, 10, 10], [0, 0, 0, 0]])
    iou = iou_matrix(a, b)
    assert iou.shape == (1, 4)
    assert iou[0, 0] == pytest.approx(1.0)
    assert iou[0, 1] == 0.0
    assert iou[0, 2] == pytest.approx(50 / 150)  # overlap 5x10, union 100 + 100 - 50
    assert iou[0, 3] == 0.0  # an empty box overlaps nothing (no division by zero)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 4)


def test_greedy_match_takes_the_best_pairs_first_and_respects_the_threshold():
    iou = np.array([[0.9, 0.8, 0.0],
                    [0.85, 0.1, 0.0],
                    [0.0, 0.0, 0.2]])
    pairs = greedy_match(iou, 0.3)
    # (0,0) first; row 1 then cannot take column 0 and 0.1 is under the threshold;
    # row 2's 0.2 is under it too.
    assert pairs == [(0, 0)]
    assert sorted(greedy_match(iou, 0.05)) == [(0, 0), (1, 1), (2, 2)]
    assert greedy_match(np.zeros((0, 3)), 0.3) == []


def moving_boxes(n_frames: int, starts: list[tuple[float, float]], step=(4.0, 1.0), size=50):
    for f in range(n_frames):
        yield np.array([[x + step[0] * f, y + step[1] * f, size, size] for x, y in starts])


def test_ids_are_stable_for_moving_boxes_and_new_ones_get_new_ids():
    tracker = IoUTracker()
    seen: list[list[int]] = []
    for f, boxes in enumerate(moving_boxes(20, [(0, 0), (200, 50)])):
        tracks = tracker.update(boxes, f, f / 30)
        seen.append([t.id for t in tracks])
    assert all(ids == seen[0] for ids in seen)
    assert len(set(seen[0])) == 2
    track = tracker.get(seen[0][0])
    assert track is not None and track.hits == 20 and track.first_frame == 0
    assert track.box_int == (76, 19, 50, 50)
    # A third face appears far from the others: a new id, the old ones continue.
    tracks = tracker.update(np.array([[76, 19, 50, 50], [276, 69, 50, 50], [400, 200, 60, 60]]),
                            20, 20 / 30)
    assert [t.id for t in tracks[:2]] == seen[0]
    assert tracks[2].id not in seen[0]


def test_a_track_ages_out_after_max_missed_detection_rounds():
    tracker = IoUTracker(max_missed=2)
    first = tracker.update(np.array([[10, 10, 40, 40]]), 0, 0.0)[0]
    for f in (1, 2):  # missed twice: still kept
        tracker.update(np.zeros((0, 4)), f, f / 30)
        assert tracker.get(first.id) is not None
        assert tracker.get(first.id).missed == f
    tracker.update(np.zeros((0, 4)), 3, 0.1)  # third miss: gone
    assert tracker.get(first.id) is None
    # The face coming back now starts a new track.
    again = tracker.update(np.array([[10, 10, 40, 40]]), 4, 0.13)[0]
    assert again.id != first.id


def test_a_detection_after_a_miss_continues_the_track_and_resets_missed():
    tracker = IoUTracker(max_missed=2)
    t = tracker.update(np.array([[10, 10, 40, 40]]), 0, 0.0)[0]
    tracker.update(np.zeros((0, 4)), 1, 0.03)
    again = tracker.update(np.array([[12, 11, 40, 40]]), 2, 0.06)[0]
    assert again.id == t.id and again.missed == 0


def test_move_and_lost_between_detections():
    tracker = IoUTracker()
    t = tracker.update(np.array([[10, 10, 40, 40]]), 0, 0.0)[0]
    tracker.move(t.id, np.array([20, 10, 40, 40]))
    assert t.box_int == (20, 10, 40, 40)
    tracker.move(t.id, None)
    assert t.lost and tracker.visible() == []
    tracker.update(np.array([[22, 10, 40, 40]]), 3, 0.1)  # a detection finds it again
    assert not t.lost and tracker.visible() == [t]


def vote(name, d, frame):
    return Vote(name, d, frame, frame / 10)


def test_label_is_the_majority_of_recent_votes_and_one_odd_vote_does_not_flip_it():
    track = Track(1, np.zeros(4), 0, 0.0, 0, 0.0, vote_window=5)
    assert track.label.name is None and track.label.support == 0 and track.label.d is None
    labels = []
    for i, (name, d) in enumerate([("ann", 0.20), ("ann", 0.22), ("bob", 0.30), ("ann", 0.25),
                                   (None, 0.50), ("ann", 0.21)]):
        track.add_vote(vote(name, d, i))
        labels.append(track.label.name)
    assert labels == ["ann"] * 6
    label = track.label
    # window = last 5: ann, bob, ann, None, ann
    assert label.support == 3
    assert label.d == pytest.approx(0.21)  # the latest vote agreeing with the label
    assert label.since == pytest.approx(0.1)  # the earliest "ann" vote still in the window


def test_ties_go_to_the_most_recent_name_and_old_votes_leave_the_window():
    track = Track(1, np.zeros(4), 0, 0.0, 0, 0.0, vote_window=3)
    for i, name in enumerate(["ann", "ann", "bob", "bob"]):
        track.add_vote(vote(name, 0.2, i))
    assert track.label.name == "bob" and track.label.support == 2  # window: ann, bob, bob
    track.add_vote(vote(None, 0.6, 4))
    assert track.label.name == "bob"
    track.add_vote(vote(None, 0.6, 5))  # window: bob, None, None
    assert track.label.name is None and track.label.d == pytest.approx(0.6)


def test_only_new_tracks_and_each_track_every_n_frames_are_due_for_embedding():
    tracker = IoUTracker(embed_every=10, embed_every_pending=3, decided_votes=2)
    t = tracker.update(np.array([[0, 0, 50, 50]]), 0, 0.0)[0]
    assert tracker.due_for_embedding([t], 0) == [t]  # new
    t.add_vote(vote("ann", 0.2, 0))
    t.last_embedded = 0
    # Undecided (1 vote < 2): every 3 frames.
    assert tracker.due_for_embedding([t], 2) == []
    assert tracker.due_for_embedding([t], 3) == [t]
    t.add_vote(vote("ann", 0.2, 3))
    t.last_embedded = 3
    # Decided: every 10 frames.
    assert next(f for f in range(4, 20) if tracker.due_for_embedding([t], f)) == 13
    t.clear_votes()  # e.g. the gallery changed
    assert tracker.due_for_embedding([t], 4) == [t]
