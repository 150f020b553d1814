"""One step of the protocol, written once for every runtime.

broadcast -> compute -> aggregate and step -> gather. Each phase is a function over
tensors whose leading dimension runs over the correct nodes a process holds: all of
them in the simulator, one (or none) in a node of a distributed runtime. Messages
move through a :class:`Transport`, which is all that differs between runtimes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import torch

from byzsgd import aggregators
from byzsgd.aggregators._checks import all_finite
from byzsgd.attacks.base import SERVER_TO_SERVER, SERVER_TO_WORKER, WORKER_TO_SERVER
from byzsgd.protocol.plan import ChannelPlan, ProtocolPlan


class Transport(Protocol):
    """Moves the correct senders' messages of a channel to its receivers."""

    def exchange(
        self,
        channel: str,
        step: int,
        messages: torch.Tensor,
        *,
        receiver_positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Send ``messages`` (c, d); return what each receiver heard, (r, q, d).

        A message that never arrived is a row of NaN: the rules treat it as a
        Byzantine input.
        """
        ...


class GradientOracle(Protocol):
    """The correct workers' stochastic gradients at their points."""

    def __call__(
        self, step: int, points: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients (w, d) and losses (w,) at ``points`` (w, d), one batch each."""
        ...


@dataclass(frozen=True)
class StepResult:
    """What one step produced on the correct nodes this process holds."""

    worker_points: torch.Tensor
    losses: torch.Tensor
    half: torch.Tensor
    params: torch.Tensor
    gathered: bool


def aggregate(
    received: torch.Tensor,
    channel: ChannelPlan,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Apply the channel's rule, with its f, to every receiver's inputs at once.

    A randomised rule (one taking ``generator``) draws from the receivers' own
    ``generator``.
    """
    options = dict(channel.rule_options)
    if "generator" in aggregators.options(channel.rule):
        options["generator"] = generator
    return aggregators.get(channel.rule)(received, f=channel.f, **options)


def keep_finite(proposed: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """Rows of ``proposed`` with a non-finite value are replaced by ``fallback``'s."""
    if all_finite(proposed):
        return proposed
    ok = torch.isfinite(proposed).all(dim=-1, keepdim=True)
    return torch.where(ok, proposed, fallback)


def worker_points(
    received: torch.Tensor,
    channel: ChannelPlan,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """theta_w = MAR(parameters heard from the servers), per correct worker."""
    points = aggregate(received, channel, generator)
    return keep_finite(points, torch.zeros_like(points))


def half_step(
    params: torch.Tensor,
    received: torch.Tensor,
    channel: ChannelPlan,
    lr: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """theta^{t+1/2} = theta^t - lr * GAR(gradients heard), per correct server."""
    direction = aggregate(received, channel, generator)
    direction = keep_finite(direction, torch.zeros_like(params))
    return keep_finite(params - lr * direction, params)


def gather(
    half: torch.Tensor,
    received: torch.Tensor,
    channel: ChannelPlan,
    mixing: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """theta^{t+1} = (1 - mixing) theta^{t+1/2} + mixing Rule(parameters heard)."""
    options = dict(channel.rule_options)
    if "generator" in aggregators.options(channel.rule):
        options["generator"] = generator
    return aggregators.mix(
        half, received, rule=channel.rule, f=channel.f, mixing=mixing, **options
    )


def protocol_step(
    step: int,
    params: torch.Tensor,
    *,
    plan: ProtocolPlan,
    transport: Transport,
    oracle: GradientOracle,
    generators: Mapping[str, torch.Generator] | None = None,
) -> StepResult:
    """Run step ``step`` from the correct servers' parameters ``params`` (s, d).

    ``generators`` maps a channel to the generator its receivers' randomised rules
    draw from (none needed for deterministic rules).
    """
    rng = dict(generators or {})

    # Broadcast: servers send their parameters; workers aggregate what they heard.
    heard = transport.exchange(SERVER_TO_WORKER, step, params)
    points = worker_points(heard, plan.server_to_worker, rng.get(SERVER_TO_WORKER))

    # Compute: one stochastic gradient per correct worker at its point.
    grads, losses = oracle(step, points)

    # Aggregate and step: servers aggregate the gradients they heard.
    heard = transport.exchange(WORKER_TO_SERVER, step, grads, receiver_positions=params)
    lr = plan.learning_rate(step)
    half = half_step(
        params, heard, plan.worker_to_server, lr, rng.get(WORKER_TO_SERVER)
    )

    # Gather: servers contract toward the parameters of the servers they heard.
    if not plan.gather_due(step):
        return StepResult(points, losses, half, half, gathered=False)
    heard = transport.exchange(SERVER_TO_SERVER, step, half, receiver_positions=half)
    new = gather(
        half, heard, plan.server_to_server, plan.mixing, rng.get(SERVER_TO_SERVER)
    )
    return StepResult(points, losses, half, new, gathered=True)
