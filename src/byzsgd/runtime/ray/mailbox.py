"""A node's mailbox: messages tagged (channel, step, sender), quorum waits.

Thread-safe: senders deliver from the actor's other threads while the node's own
loop waits. A node never waits for all n senders, only for its quorum, and a
timeout serves liveness only: what has not arrived by then is missing (a NaN row,
which the rules treat as Byzantine input).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Sequence

import torch


class Mailbox:
    """Buffers valid messages for the current and a few future steps."""

    def __init__(self, dim: int, *, max_ahead: int = 4) -> None:
        self.dim = dim
        self.max_ahead = max_ahead
        self.current = 0
        self.messages: dict[tuple[str, int], dict[int, torch.Tensor]] = defaultdict(
            dict
        )
        self.arrival: dict[tuple[str, int], list[int]] = defaultdict(list)
        self.counts = {"stale": 0, "ahead": 0, "malformed": 0, "duplicate": 0}
        self._lock = threading.Condition()

    def deliver(self, channel: str, step: int, sender: int, payload: object) -> bool:
        """Store one message; False (and counted) when stale, too far ahead or bad."""
        with self._lock:
            if step < self.current:
                self.counts["stale"] += 1
                return False
            if step > self.current + self.max_ahead:
                self.counts["ahead"] += 1
                return False
            if not self._valid(payload):
                self.counts["malformed"] += 1
                return False
            box = self.messages[(channel, step)]
            if sender in box:
                self.counts["duplicate"] += 1
                return False
            box[sender] = payload
            self.arrival[(channel, step)].append(sender)
            self._lock.notify_all()
            return True

    def _valid(self, payload: object) -> bool:
        return (
            isinstance(payload, torch.Tensor)
            and payload.dtype == torch.float32
            and payload.shape == (self.dim,)
            and bool(torch.isfinite(payload).all())
        )

    def advance(self, step: int) -> None:
        """Move to ``step``: older messages are dropped from now on."""
        with self._lock:
            self.current = step
            for key in [k for k in self.messages if k[1] < step]:
                del self.messages[key]
                self.arrival.pop(key, None)

    def collect(
        self,
        channel: str,
        step: int,
        *,
        expected: Sequence[int] | None,
        quorum: int,
        timeout: float,
    ) -> tuple[list[int], torch.Tensor, bool]:
        """Wait for a quorum and return (senders, (q, d) messages, timed out).

        With ``expected`` senders (a subset drawn before listening, or everyone),
        wait for those; without, take the first ``quorum`` to arrive. Missing
        messages are NaN rows.
        """
        deadline = time.monotonic() + timeout
        key = (channel, step)
        with self._lock:
            while True:
                arrived = self.arrival[key]
                if expected is None:
                    ready = len(arrived) >= quorum
                else:
                    ready = all(s in self.messages[key] for s in expected)
                remaining = deadline - time.monotonic()
                if ready or remaining <= 0:
                    break
                self._lock.wait(remaining)
            senders = list(expected) if expected is not None else arrived[:quorum]
            rows = [self.messages[key].get(s) for s in senders]
        missing = torch.full((self.dim,), torch.nan)
        while len(rows) < quorum:
            rows.append(None)
            senders.append(-1)
        stacked = torch.stack([missing if r is None else r for r in rows])
        return senders, stacked, not ready
