"""Subset policies: which senders' messages each receiver uses on a channel."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def random_subsets(
    num_senders: int,
    quorum: int,
    generators: Sequence[torch.Generator],
    *,
    own_ids: Sequence[int] | None = None,
) -> torch.Tensor:
    """Each receiver draws ``quorum`` distinct senders uniformly, before it listens.

    Receiver i uses only its own generator ``generators[i]``. With ``own_ids`` the
    receiver always counts itself (sender ``own_ids[i]``) and draws ``quorum - 1``
    of the others. Returns sender ids (r, q).
    """
    rows = []
    for i, gen in enumerate(generators):
        if own_ids is None:
            rows.append(torch.randperm(num_senders, generator=gen)[:quorum])
            continue
        own = own_ids[i]
        others = torch.randperm(num_senders - 1, generator=gen)[: quorum - 1]
        others = others + (others >= own).long()
        rows.append(torch.cat([torch.tensor([own]), others]))
    return torch.stack(rows) if rows else torch.empty(0, quorum, dtype=torch.long)


def all_senders(num_senders: int, num_receivers: int) -> torch.Tensor:
    """Every receiver uses every sender: ids (r, n)."""
    return torch.arange(num_senders).expand(num_receivers, num_senders).clone()


def first_arrivals(
    delays: torch.Tensor, quorum: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``quorum`` earliest messages per receiver, from arrival delays (r, n).

    A message that never arrives has delay +inf. Returns sender ids (r, q) in arrival
    order (ties broken by the lower id) and the wait until the q-th arrival (r,),
    which is +inf where fewer than q messages arrived.
    """
    order = torch.sort(delays, dim=-1, stable=True)
    return order.indices[:, :quorum], order.values[:, quorum - 1]
