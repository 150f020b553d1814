"""What an attack sees each step, the attack interface, and the registry."""

from __future__ import annotations

import copy
import inspect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

SERVER_TO_WORKER = "server_to_worker"
WORKER_TO_SERVER = "worker_to_server"
SERVER_TO_SERVER = "server_to_server"
ALL_CHANNELS = frozenset({SERVER_TO_WORKER, WORKER_TO_SERVER, SERVER_TO_SERVER})
SERVER_CHANNELS = frozenset({SERVER_TO_WORKER, SERVER_TO_SERVER})


@dataclass(frozen=True)
class AttackView:
    """Everything the colluding Byzantine senders of one channel know at one step.

    Attributes
    ----------
    step:
        The protocol step.
    channel:
        ``server_to_worker``, ``worker_to_server`` or ``server_to_server``.
    correct_messages:
        (c, d) what each correct sender sends on this channel this step.
    num_byzantine:
        b, the Byzantine senders of this channel.
    num_receivers:
        r, the correct receivers.
    receiver_positions:
        (r, d) each receiver's own parameters where it has any (servers), else None.
    subsets:
        (r, q) the sender ids each receiver listens to, when the adversary sees them.
    rule, f:
        The receivers' aggregation rule and the f it is told.
    generator:
        The coalition's generator.
    correct_senders, byzantine_senders:
        The sender ids behind the rows of ``correct_messages`` and of the attack's
        output.
    quorum:
        q, how many messages each receiver uses.
    rule_options:
        The keyword options of the receivers' rule.
    oracle:
        For Byzantine workers: ``oracle(points, flip_labels)`` computes one honest
        gradient per Byzantine worker (b, d) at ``points`` (b, d) on its own data,
        with flipped labels if asked. None where there is none.
    """

    step: int
    channel: str
    correct_messages: torch.Tensor
    num_byzantine: int
    num_receivers: int
    receiver_positions: torch.Tensor | None
    subsets: torch.Tensor | None
    rule: str
    f: int
    generator: torch.Generator
    correct_senders: tuple[int, ...] = ()
    byzantine_senders: tuple[int, ...] = ()
    quorum: int = 0
    rule_options: dict = field(default_factory=dict)
    oracle: Callable[[torch.Tensor, bool], torch.Tensor] | None = None

    @property
    def dim(self) -> int:
        return self.correct_messages.shape[-1]

    def broadcast(self, vector: torch.Tensor) -> torch.Tensor:
        """The same vector (d,) for every (Byzantine sender, receiver): (b, r, d)."""
        return vector.expand(self.num_byzantine, self.num_receivers, self.dim).clone()

    def per_receiver(self, vectors: torch.Tensor) -> torch.Tensor:
        """One vector per receiver (r, d), sent by every Byzantine sender: (b, r, d)."""
        return vectors.expand(self.num_byzantine, self.num_receivers, self.dim).clone()

    def per_sender(self, vectors: torch.Tensor) -> torch.Tensor:
        """One vector per Byzantine sender (b, d), sent to every receiver: (b, r, d)."""
        return vectors.unsqueeze(1).expand(-1, self.num_receivers, -1).clone()

    def heard_correct(self) -> list[torch.Tensor]:
        """The correct messages each receiver uses, as the adversary best knows.

        With the receivers' subsets: exactly the correct senders in each. Without
        them: the first q - b correct senders by id (the adversary's own messages
        arrive first under the default delay model).
        """
        position = {sender: i for i, sender in enumerate(self.correct_senders)}
        if self.subsets is None:
            count = max(self.quorum - self.num_byzantine, 1) if self.quorum else None
            rows = self.correct_messages[:count]
            return [rows] * self.num_receivers
        heard = []
        for subset in self.subsets.tolist():
            picks = [position[s] for s in subset if s in position]
            heard.append(self.correct_messages[picks])
        return heard

    def byzantine_slots(self) -> list[int]:
        """How many Byzantine messages each receiver uses (all b without subsets)."""
        if self.subsets is None:
            return [self.num_byzantine] * self.num_receivers
        byzantine = set(self.byzantine_senders)
        return [sum(s in byzantine for s in row) for row in self.subsets.tolist()]


class Attack:
    """A Byzantine behaviour: one vector per (Byzantine sender, correct receiver).

    Subclasses set ``name`` and ``channels`` and implement :meth:`messages`, which
    returns a tensor (b, r, d), or None when the Byzantine senders stay silent this
    step. Options are keyword arguments of ``__init__``.
    """

    name: ClassVar[str] = ""
    channels: ClassVar[frozenset[str]] = ALL_CHANNELS
    equivocates: ClassVar[bool] = False

    def messages(self, view: AttackView) -> torch.Tensor | None:
        raise NotImplementedError(f"attack {self.name!r} does not define messages()")

    def __call__(self, view: AttackView) -> torch.Tensor | None:
        out = self.messages(view)
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            out = out.to(view.correct_messages.dtype)
        return out

    def state_dict(self) -> dict[str, Any]:
        """Every attribute, as tensors and plain Python values (for checkpoints).

        Options and what the attack learned along the run (a history, a drawn sign
        pattern) alike; a ``deque`` is saved as a list. An attack holding other
        objects overrides this and :meth:`load_state_dict`.
        """
        return {
            name: list(value) if isinstance(value, deque) else copy.deepcopy(value)
            for name, value in vars(self).items()
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned; a ``deque`` keeps its maxlen."""
        for name, value in state.items():
            current = getattr(self, name, None)
            if isinstance(current, deque):
                value = deque(value, maxlen=current.maxlen)
            setattr(self, name, copy.deepcopy(value))


_ATTACKS: dict[str, type[Attack]] = {}


def register(cls: type[Attack]) -> type[Attack]:
    """Class decorator that makes the attack available by its ``name``."""
    _ATTACKS[cls.name] = cls
    return cls


def names(channel: str | None = None) -> list[str]:
    """Sorted names of the attacks, optionally only those valid on ``channel``."""
    return sorted(
        n for n, c in _ATTACKS.items() if channel is None or channel in c.channels
    )


def get(name: str) -> type[Attack]:
    """The attack class called ``name``; an unknown name lists the valid ones."""
    if name not in _ATTACKS:
        raise ValueError(
            f"unknown attack {name!r}; expected one of: {', '.join(names())}"
        )
    return _ATTACKS[name]


def make(name: str, channel: str, options: dict | None = None) -> Attack:
    """Build attack ``name`` for ``channel`` with keyword ``options``, checking both."""
    cls = get(name)
    if channel not in cls.channels:
        raise ValueError(
            f"attack {name!r} does not apply to channel {channel}; attacks for it: "
            f"{', '.join(names(channel))}"
        )
    options = dict(options or {})
    allowed = [
        p for p in inspect.signature(cls.__init__).parameters if p not in ("self",)
    ]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"attack {name!r} has no option {unknown[0]!r}; its options: "
            f"{', '.join(allowed) or 'none'}"
        )
    return cls(**options)


def spread(messages: torch.Tensor) -> torch.Tensor:
    """Mean distance of the correct messages (c, d) to their mean: a scalar."""
    centre = messages.mean(dim=0)
    return (messages - centre).norm(dim=-1).mean()


def halves(num_receivers: int) -> torch.Tensor:
    """+1 for the first half of the receivers, -1 for the others: (r, 1)."""
    signs = torch.ones(num_receivers, 1)
    signs[num_receivers // 2 :] = -1.0
    return signs
