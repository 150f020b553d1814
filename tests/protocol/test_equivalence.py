"""With no Byzantine node and full quorums, the protocol is plain mini-batch SGD."""

from __future__ import annotations

import torch

from byzsgd.protocol.topology import WORKER
from byzsgd.runtime.simulator import Simulator
from tests.conftest import tiny_config


def fault_free(model: str):
    return tiny_config(
        steps=15,
        num_byzantine_servers=0,
        num_byzantine_workers=0,
        task__model=model,
        server_to_worker__policy="all",
        server_to_worker__attack="none",
        worker_to_server__policy="all",
        worker_to_server__rule="mean",
        worker_to_server__attack="none",
        server_to_server__policy="all",
        server_to_server__attack="none",
    )


def plain_sgd(simulator: Simulator, steps: int) -> torch.Tensor:
    """Mini-batch SGD with averaged gradients, on the batches the workers draw."""
    task, topology, plan = simulator.task, simulator.topology, simulator.plan
    theta = task.init_params(topology.generator("init"))
    workers = topology.correct_workers
    generators = [topology.generator(WORKER, w, "batches") for w in workers]
    for t in range(steps):
        x, y = task.sample_batches(workers, generators, plan.batch_size)
        grads = []
        for i in range(len(workers)):
            point = theta.clone().requires_grad_(True)
            loss = task.model.loss(point, x[i], y[i])
            grads.append(torch.autograd.grad(loss, point)[0])
        theta = theta - plan.learning_rate(t) * torch.stack(grads).mean(dim=0)
    return theta


def test_fault_free_protocol_is_plain_sgd() -> None:
    for model in ("logistic", "mlp"):
        simulator = Simulator(fault_free(model))
        while not simulator.done:
            simulator.step()
        params = simulator.params
        assert params.shape[0] == 5
        assert torch.equal(params, params[:1].expand_as(params)), "servers differ"
        expected = plain_sgd(Simulator(fault_free(model)), 15)
        assert (params[0] - expected).abs().max() < 1e-6
        assert (
            params[0] - simulator.task.init_params(simulator.topology.generator("init"))
        ).abs().max() > 1e-3


def test_inverse_schedule_matches_plain_sgd() -> None:
    config = fault_free("logistic")
    config.optimizer.lr_schedule = "inverse"
    config.optimizer.lr_decay = 0.5
    simulator = Simulator(config)
    while not simulator.done:
        simulator.step()
    expected = plain_sgd(Simulator(config), 15)
    assert (simulator.params[0] - expected).abs().max() < 1e-6
