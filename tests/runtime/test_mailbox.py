"""A node's mailbox: quorum waits, bounds, and malformed messages."""

from __future__ import annotations

import threading

import torch

from byzsgd.runtime.ray.mailbox import Mailbox


def test_first_quorum_in_arrival_order() -> None:
    box = Mailbox(3)
    for sender in (4, 1, 2):
        assert box.deliver("c", 0, sender, torch.full((3,), float(sender)))
    senders, heard, timed_out = box.collect("c", 0, expected=None, quorum=2, timeout=1)
    assert senders == [4, 1] and not timed_out
    assert torch.equal(heard[:, 0], torch.tensor([4.0, 1.0]))


def test_expected_subset_waits_for_exactly_those_senders() -> None:
    box = Mailbox(2)
    box.deliver("c", 0, 0, torch.zeros(2))

    def late() -> None:
        box.deliver("c", 0, 3, torch.ones(2))

    timer = threading.Timer(0.05, late)
    timer.start()
    senders, heard, timed_out = box.collect(
        "c", 0, expected=[3, 0], quorum=2, timeout=5
    )
    timer.join()
    assert senders == [3, 0] and not timed_out
    assert torch.equal(heard, torch.tensor([[1.0, 1.0], [0.0, 0.0]]))


def test_timeout_leaves_missing_rows_as_nan() -> None:
    box = Mailbox(2)
    box.deliver("c", 0, 1, torch.ones(2))
    _, heard, timed_out = box.collect("c", 0, expected=[1, 2], quorum=2, timeout=0.05)
    assert timed_out
    assert torch.isnan(heard[1]).all() and torch.equal(heard[0], torch.ones(2))


def test_malformed_stale_duplicate_and_far_future_messages_are_dropped() -> None:
    box = Mailbox(3, max_ahead=2)
    box.advance(5)
    assert not box.deliver("c", 4, 0, torch.zeros(3))  # stale
    assert not box.deliver("c", 8, 0, torch.zeros(3))  # too far ahead
    assert box.deliver("c", 7, 0, torch.zeros(3))  # buffered future
    bad = [
        torch.zeros(4),
        torch.zeros(3, dtype=torch.float64),
        torch.tensor([0.0, float("nan"), 0.0]),
        torch.tensor([0.0, float("inf"), 0.0]),
        "not a tensor",
        None,
    ]
    assert not any(box.deliver("c", 5, 1, payload) for payload in bad)
    assert box.deliver("c", 5, 1, torch.zeros(3))
    assert not box.deliver("c", 5, 1, torch.ones(3))  # a second message from 1
    assert box.counts == {"stale": 1, "ahead": 1, "malformed": 6, "duplicate": 1}
