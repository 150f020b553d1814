"""Who is who: node ids, which of them are Byzantine, and every node's seed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

SERVER = "server"
WORKER = "worker"


def derive_seed(seed: int, *names: object) -> int:
    """A 63-bit seed for the stream named by ``names`` under the run seed."""
    text = repr((int(seed), *names)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") >> 1


def generator(seed: int, *names: object) -> torch.Generator:
    """A fresh CPU generator for the stream named by ``names`` under the run seed."""
    return torch.Generator().manual_seed(derive_seed(seed, *names))


@dataclass(frozen=True)
class Topology:
    """Servers 0..n_s-1 and workers 0..n_w-1, and which of them are Byzantine.

    Only the harness and the adversary read ``byzantine_*``; a correct node's code
    never does.
    """

    num_servers: int
    num_workers: int
    byzantine_servers: tuple[int, ...]
    byzantine_workers: tuple[int, ...]
    seed: int

    @property
    def correct_servers(self) -> tuple[int, ...]:
        return _others(self.num_servers, self.byzantine_servers)

    @property
    def correct_workers(self) -> tuple[int, ...]:
        return _others(self.num_workers, self.byzantine_workers)

    def generator(self, *names: object) -> torch.Generator:
        """The generator of stream ``names`` (e.g. ``("worker", 3, "batches")``)."""
        return generator(self.seed, *names)


def seeded_byzantine(seed: int, role: str, num_nodes: int, num_byzantine: int) -> tuple:
    """Sorted ids of ``num_byzantine`` of ``num_nodes`` nodes, drawn from the seed."""
    order = torch.randperm(num_nodes, generator=generator(seed, "byzantine", role))
    return tuple(sorted(order[:num_byzantine].tolist()))


def _others(num_nodes: int, excluded: tuple[int, ...]) -> tuple[int, ...]:
    skip = set(excluded)
    return tuple(i for i in range(num_nodes) if i not in skip)
