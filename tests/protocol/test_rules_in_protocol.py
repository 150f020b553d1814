"""Composite and randomised rules run inside the protocol, seeded and repeatable."""

from __future__ import annotations

import torch

from byzsgd import aggregators
from byzsgd.protocol.plan import ChannelPlan
from byzsgd.protocol.step import gather
from byzsgd.runtime.simulator import Simulator
from tests.conftest import tiny_config


def run(config) -> Simulator:
    simulator = Simulator(config)
    while not simulator.done:
        simulator.step()
    return simulator


def test_randomised_composite_rules_are_seeded() -> None:
    config = tiny_config(
        worker_to_server__rule="bucketing+median",
        worker_to_server__rule_options={"bucket_size": 2},
        server_to_server__rule="nnm+trimmed_mean",
        server_to_worker__rule="geometric_median",
    )
    first, second = run(config), run(config)
    assert torch.equal(first.params, second.params)
    assert torch.isfinite(first.params).all()
    other = tiny_config(
        seed=5,
        worker_to_server__rule="bucketing+median",
        worker_to_server__rule_options={"bucket_size": 2},
    )
    assert not torch.equal(run(other).params, first.params)


def test_gather_mixes_own_parameters_with_the_rule() -> None:
    half = torch.tensor([[0.0, 0.0], [4.0, 4.0]])
    heard = torch.tensor(
        [
            [[0.0, 0.0], [2.0, 2.0], [3.0, 3.0], [100.0, -100.0], [2.5, 2.5]],
            [[4.0, 4.0], [2.0, 2.0], [3.0, 3.0], [100.0, -100.0], [2.5, 2.5]],
        ]
    )
    plan = ChannelPlan(
        "server_to_server",
        5,
        5,
        "all",
        "multi_krum",
        1,
        rule_options={"num_selected": 2},
    )
    pulled = aggregators.multi_krum(heard, f=1, num_selected=2)
    out = gather(half, heard, plan, 0.25)
    assert torch.allclose(out, 0.75 * half + 0.25 * pulled)
    assert torch.equal(gather(half, heard, plan, 1.0), pulled)
