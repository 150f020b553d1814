"""The simulator's transport: subset policies, faults and what receivers hear."""

from __future__ import annotations

import torch

from byzsgd.attacks.base import SERVER_TO_SERVER, SERVER_TO_WORKER, WORKER_TO_SERVER
from byzsgd.config import FaultConfig
from byzsgd.protocol.plan import ChannelPlan
from byzsgd.protocol.quorum import random_subsets
from byzsgd.protocol.topology import Topology
from byzsgd.runtime.channels import SimulatedChannel, channel_roles

TOPOLOGY = Topology(
    num_servers=5,
    num_workers=8,
    byzantine_servers=(1,),
    byzantine_workers=(2, 5),
    seed=3,
)


def channel(name, policy, quorum, attack="none", faults=None, **kw):
    senders = 8 if name == WORKER_TO_SERVER else 5
    f = 2 if name == WORKER_TO_SERVER else 1
    plan = ChannelPlan(name, senders, quorum, policy, "median", f, attack, **kw)
    roles = channel_roles(name, TOPOLOGY)
    return SimulatedChannel(plan, roles, TOPOLOGY, faults or FaultConfig())


def grads(count=6, dim=4):
    return torch.arange(count * dim, dtype=torch.float32).reshape(count, dim)


def test_policy_all_delivers_every_correct_message_in_sender_order() -> None:
    ch = channel(WORKER_TO_SERVER, "all", 8)
    heard = ch.exchange(0, grads())
    assert heard.shape == (4, 8, 4)
    correct = [0, 1, 3, 4, 6, 7]
    assert torch.equal(heard[:, correct], grads().expand(4, 6, 4))
    honest_mean = grads().mean(0)
    assert torch.equal(heard[:, [2, 5]], honest_mean.expand(4, 2, 4))


def test_random_subsets_are_distinct_and_seeded() -> None:
    gens = [torch.Generator().manual_seed(i) for i in range(5)]
    subsets = random_subsets(9, 5, gens)
    assert subsets.shape == (5, 5)
    assert all(len(set(row.tolist())) == 5 for row in subsets)
    again = random_subsets(9, 5, [torch.Generator().manual_seed(i) for i in range(5)])
    assert torch.equal(subsets, again)
    with_self = random_subsets(9, 4, gens, own_ids=[0, 3, 8, 5, 1])
    assert with_self[:, 0].tolist() == [0, 3, 8, 5, 1]
    assert all(len(set(row.tolist())) == 4 for row in with_self)


def test_first_policy_puts_fastest_byzantine_messages_in_every_quorum() -> None:
    ch = channel(WORKER_TO_SERVER, "first", 6, attack="polarise")
    ch.exchange(0, grads())
    assert ch.stats["byzantine_in_quorum"] == 2.0
    assert ch.stats["timeouts"] == 0.0


def test_polarise_sends_different_vectors_to_different_servers() -> None:
    ch = channel(WORKER_TO_SERVER, "all", 8, attack="polarise")
    heard = ch.exchange(0, torch.randn(6, 10))
    forged = heard[:, 2]
    assert not torch.allclose(forged[0], forged[-1])
    assert torch.allclose(heard[:, 2], heard[:, 5])  # colluding senders agree


def test_crashed_byzantine_senders_are_missing_and_quorums_fill_with_correct() -> None:
    ch = channel(WORKER_TO_SERVER, "first", 6, attack="crash")
    heard = ch.exchange(0, grads())
    assert torch.isfinite(heard).all()
    assert ch.stats["byzantine_in_quorum"] == 0.0
    ch = channel(WORKER_TO_SERVER, "all", 8, attack="crash")
    heard = ch.exchange(0, grads())
    assert torch.isnan(heard[:, [2, 5]]).all()
    assert ch.stats["missing"] == 8.0


def test_quorum_unreachable_is_a_timeout_with_nan_rows() -> None:
    ch = channel(WORKER_TO_SERVER, "first", 7, attack="crash")
    heard = ch.exchange(0, grads())
    assert ch.stats["timeouts"] == 4.0
    assert torch.isnan(heard[:, -1]).all()


def test_omission_drops_about_the_given_fraction() -> None:
    faults = FaultConfig(omission=0.3)
    ch = channel(WORKER_TO_SERVER, "all", 8, faults=faults)
    missing = 0.0
    for step in range(200):
        ch.exchange(step, grads())
        missing += ch.stats["missing"]
    fraction = missing / (200 * 4 * 6)
    assert 0.25 < fraction < 0.35


def test_stragglers_rarely_make_the_first_quorum() -> None:
    faults = FaultConfig(stragglers=[0], straggler_slowdown=50.0)
    ch = channel(WORKER_TO_SERVER, "first", 5, faults=faults)
    hits = 0
    for step in range(100):
        x = grads()
        heard = ch.exchange(step, x)
        hits += int((heard == x[0]).all(-1).sum())
    assert hits < 20


def test_include_self_always_counts_own_parameters() -> None:
    ch = channel(SERVER_TO_SERVER, "first", 3, attack="split", include_self=True)
    params = torch.randn(4, 6)
    heard = ch.exchange(0, params, params)
    assert torch.equal(heard[:, 0], params)


def test_split_on_workers_equivocates() -> None:
    ch = channel(SERVER_TO_WORKER, "all", 5, attack="split")
    params = torch.randn(4, 6)
    heard = ch.exchange(0, params)
    forged = heard[:, 1]
    assert not torch.allclose(forged[0], forged[-1])


def test_malformed_attack_outputs_are_dropped_not_fatal() -> None:
    from byzsgd import attacks
    from byzsgd.attacks import base

    outputs = {
        "too_wide": lambda v: torch.zeros(v.num_byzantine, v.num_receivers, v.dim + 1),
        "scalar": lambda v: torch.tensor(3.0),
        "a_list": lambda v: [1, 2, 3],
        "complex": lambda v: torch.zeros(v.num_byzantine, v.num_receivers, v.dim) * 1j,
    }
    saved = dict(base._ATTACKS)
    try:
        for name, make in outputs.items():
            attacks.register(
                type(
                    name,
                    (attacks.Attack,),
                    {"name": name, "messages": lambda s, v, m=make: m(v)},
                )
            )
            ch = channel(WORKER_TO_SERVER, "all", 8, attack=name)
            heard = ch.exchange(0, grads())
            assert heard.shape == (4, 8, 4)
            correct = [0, 1, 3, 4, 6, 7]
            assert torch.equal(heard[:, correct], grads().expand(4, 6, 4))
            if name != "scalar":
                assert torch.isnan(heard[:, [2, 5]]).all(), name
    finally:
        base._ATTACKS.clear()
        base._ATTACKS.update(saved)


def test_first_quorum_counts_only_valid_messages() -> None:
    ch = channel(WORKER_TO_SERVER, "first", 6, attack="nonfinite", faults=FaultConfig())
    heard = ch.exchange(0, grads())
    assert ch.stats["byzantine_in_quorum"] == 0.0
    assert torch.isfinite(heard).all()
