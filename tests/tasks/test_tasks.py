"""Tests of the tasks: shapes, shards, sampling, batched gradients and evaluation."""

from __future__ import annotations

import functools
import pickle
import re

import pytest
import torch

from byzsgd.config import ConfigError, TaskConfig
from byzsgd.tasks import Task, build_task

CLASSIFICATION = [
    (name, model)
    for name in ("digits", "mnist")
    for model in ("logistic", "mlp", "cnn")
]
FEATURES = {"digits": 64, "mnist": 784, "quadratic": 20}


@functools.cache
def cached_task(name: str, model: str = "mlp", split: str = "iid") -> Task:
    """A task built once per test session; tests must not modify it."""
    config = TaskConfig(name=name, model=model, split=split, dirichlet_alpha=0.1)
    return build_task(config, num_workers=7, seed=3)


def label_skew(task: Task) -> float:
    """Mean total-variation distance of the shards' label mix to the overall mix."""
    classes = int(task.num_classes or 0)
    overall = torch.bincount(task.y_train, minlength=classes) / len(task.y_train)
    distances = []
    for shard in task.shards:
        mix = torch.bincount(task.y_train[shard], minlength=classes) / len(shard)
        distances.append(0.5 * (mix - overall).abs().sum())
    return float(torch.stack(distances).mean())


@pytest.mark.parametrize(("name", "model"), [*CLASSIFICATION, ("quadratic", "mlp")])
def test_shapes_and_dtypes(name: str, model: str) -> None:
    task = cached_task(name, model)
    num_train, num_features = task.x_train.shape
    assert num_features == FEATURES[name]
    assert task.x_train.dtype == task.x_test.dtype == torch.float32
    assert len(task.y_train) == num_train and len(task.x_test) == len(task.y_test)
    assert len(task.y_test) == round(0.2 * (num_train + len(task.y_test)))
    if name == "quadratic":
        assert task.num_classes is None and task.y_train.dtype == torch.float32
        assert task.optimum is not None and task.optimum.shape == (task.dim,)
    else:
        assert task.num_classes == 10 and task.y_train.dtype == torch.int64
        assert task.x_train.min() >= 0.0 and task.x_train.max() <= 1.0
    params = task.init_params(torch.Generator().manual_seed(0))
    assert params.shape == (task.dim,) and params.dtype == torch.float32
    assert task.model.logits(params, task.x_test[:5]).shape[0] == 5


def test_parameter_counts() -> None:
    assert cached_task("mnist", "mlp").dim == 784 * 64 + 64 + 64 * 10 + 10
    assert cached_task("digits", "logistic").dim == 64 * 10 + 10
    conv = 8 * 9 + 8 + 16 * 8 * 9 + 16
    assert cached_task("mnist", "cnn").dim == conv + 16 * 7 * 7 * 10 + 10
    assert cached_task("digits", "cnn").dim == conv + 16 * 2 * 2 * 10 + 10
    assert cached_task("quadratic").dim == 20


@pytest.mark.parametrize("name", ["digits", "mnist", "quadratic"])
def test_iid_shards_partition_the_train_split(name: str) -> None:
    task = cached_task(name)
    assert len(task.shards) == 7
    assert all(shard.dtype == torch.int64 for shard in task.shards)
    joined = torch.cat(task.shards).sort().values
    assert torch.equal(joined, torch.arange(len(task.y_train)))
    sizes = [len(shard) for shard in task.shards]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("name", ["digits", "mnist"])
def test_dirichlet_shards_are_non_empty_and_skewed(name: str) -> None:
    iid, skewed = cached_task(name), cached_task(name, split="dirichlet")
    assert min(len(shard) for shard in skewed.shards) >= 8
    joined = torch.cat(skewed.shards).sort().values
    assert torch.equal(joined, torch.arange(len(skewed.y_train)))
    assert label_skew(skewed) > 0.4 > 0.1 > label_skew(iid)


def test_build_is_deterministic_in_the_seed_and_leaves_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    config = TaskConfig(name="digits", model="cnn", split="dirichlet")
    first = build_task(config, num_workers=5, seed=11)
    second = build_task(config, num_workers=5, seed=11)
    other = build_task(config, num_workers=5, seed=12)
    first.init_params(torch.Generator().manual_seed(0))
    first.sample_batch(0, torch.Generator().manual_seed(0), 4)
    assert torch.equal(state, torch.random.get_rng_state())
    assert torch.equal(first.x_train, second.x_train)
    assert all(map(torch.equal, first.shards, second.shards))
    assert not torch.equal(first.y_train, other.y_train)


def test_sample_batch_is_a_function_of_the_generator_and_stays_in_its_shard() -> None:
    task = cached_task("digits")
    generator = torch.Generator().manual_seed(5)
    twin = torch.Generator().set_state(generator.get_state())
    x, y = task.sample_batch(2, generator, 64)
    x_again, y_again = task.sample_batch(2, twin, 64)
    assert torch.equal(x, x_again) and torch.equal(y, y_again)
    assert x.shape == (64, 64) and y.shape == (64,)

    shard_rows = task.x_train[task.shards[2]]
    assert torch.cdist(x, shard_rows).min(dim=1).values.max() == 0.0
    others = task.x_train[torch.cat([task.shards[i] for i in (0, 1, 3, 4, 5, 6)])]
    assert torch.cdist(x, others).min(dim=1).values.min() > 0.0


def test_sample_batch_draws_once_with_randint() -> None:
    task = cached_task("digits")
    generator = torch.Generator().manual_seed(9)
    twin = torch.Generator().set_state(generator.get_state())
    x, _ = task.sample_batch(4, generator, 16)
    shard = task.shards[4]
    expected = shard[torch.randint(len(shard), (16,), generator=twin)]
    assert torch.equal(x, task.x_train[expected])
    assert torch.equal(generator.get_state(), twin.get_state())


def test_sample_batches_stacks_sample_batch() -> None:
    task = cached_task("mnist")
    workers = [6, 0, 3]
    seeds = [1, 2, 3]
    x, y = task.sample_batches(
        workers, [torch.Generator().manual_seed(s) for s in seeds], 8
    )
    assert x.shape == (3, 8, 784) and y.shape == (3, 8)
    for row, (worker, seed) in enumerate(zip(workers, seeds, strict=True)):
        xw, yw = task.sample_batch(worker, torch.Generator().manual_seed(seed), 8)
        assert torch.equal(x[row], xw) and torch.equal(y[row], yw)


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("digits", "logistic"),
        ("digits", "mlp"),
        ("digits", "cnn"),
        ("mnist", "cnn"),
        ("quadratic", "mlp"),
    ],
)
def test_gradients_match_a_loop_of_autograd(name: str, model: str) -> None:
    task = cached_task(name, model)
    generators = [torch.Generator().manual_seed(i) for i in range(4)]
    x, y = task.sample_batches(range(4), generators, 16)
    base = task.init_params(torch.Generator().manual_seed(0))
    noise = torch.randn(4, task.dim, generator=torch.Generator().manual_seed(1))
    points = base + 0.1 * noise
    grads, losses = task.gradients(points, x, y)
    assert grads.shape == (4, task.dim) and losses.shape == (4,)
    for worker in range(4):
        point = points[worker].clone().requires_grad_(True)
        loss = task.model.loss(point, x[worker], y[worker])
        (grad,) = torch.autograd.grad(loss, point)
        torch.testing.assert_close(grads[worker], grad, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(losses[worker], loss.detach(), atol=1e-6, rtol=1e-6)


def test_cross_entropy_matches_torch() -> None:
    task = cached_task("digits", "mlp")
    params = task.init_params(torch.Generator().manual_seed(2))
    x, y = task.x_test[:50], task.y_test[:50]
    expected = torch.nn.functional.cross_entropy(task.model.logits(params, x), y)
    torch.testing.assert_close(task.model.loss(params, x, y), expected)


def test_evaluate_rows_independently_and_survives_non_finite_rows() -> None:
    task = cached_task("digits", "mlp")
    generator = torch.Generator().manual_seed(0)
    params = torch.stack([task.init_params(generator) for _ in range(4)])
    params[1, 7] = float("nan")
    params[2, 0] = float("inf")
    metrics = task.evaluate(params)
    assert set(metrics) == {"accuracy", "loss"}
    assert metrics["accuracy"].shape == metrics["loss"].shape == (4,)
    assert torch.isnan(metrics["accuracy"][1:3]).all()
    assert torch.isnan(metrics["loss"][1:3]).all()
    alone = task.evaluate(params[3:])
    torch.testing.assert_close(metrics["loss"][3:], alone["loss"])
    logits = task.model.logits(params[3], task.x_test)
    accuracy = (logits.argmax(dim=1) == task.y_test).float().mean()
    torch.testing.assert_close(metrics["accuracy"][3], accuracy)


def test_evaluate_rejects_a_single_vector() -> None:
    task = cached_task("digits", "logistic")
    with pytest.raises(ValueError, match=r"expected \(k, 650\)"):
        task.evaluate(torch.zeros(650))


def test_logistic_sgd_on_digits_learns() -> None:
    task = cached_task("digits", "logistic")
    params = task.init_params(torch.Generator().manual_seed(0))
    generators = [torch.Generator().manual_seed(100 + i) for i in range(7)]
    for _ in range(300):
        x, y = task.sample_batches(range(7), generators, 16)
        grads, _ = task.gradients(params.expand(7, -1), x, y)
        params = params - 0.5 * grads.mean(dim=0)
    accuracy = task.evaluate(params[None])["accuracy"].item()
    assert accuracy > 0.85


def test_quadratic_optimum_zeroes_the_train_gradient() -> None:
    task = cached_task("quadratic")
    assert task.optimum is not None
    grads, loss = task.gradients(
        task.optimum[None], task.x_train[None], task.y_train[None]
    )
    assert grads.norm() < 1e-4
    # The noise has variance 1, so the half mean squared error is about 0.5.
    assert 0.4 < loss.item() < 0.6
    nearby = task.optimum + 0.1 * torch.ones(task.dim)
    metrics = task.evaluate(torch.stack([task.optimum, nearby]))
    assert set(metrics) == {"loss", "distance_to_optimum"}
    torch.testing.assert_close(
        metrics["distance_to_optimum"], torch.tensor([0.0, 0.1 * task.dim**0.5])
    )
    assert metrics["loss"][0] < metrics["loss"][1]


@pytest.mark.parametrize(
    ("key", "value", "pattern"),
    [
        (
            "name",
            "cifar",
            "task.name = 'cifar' is not allowed; expected one of: digits",
        ),
        ("model", "resnet", "task.model = 'resnet' is not allowed; expected one of"),
        ("split", "shuffled", "task.split = 'shuffled' is not allowed"),
        ("hidden_size", 0, "task.hidden_size = 0"),
        ("test_fraction", 0.0, "task.test_fraction = 0.0"),
    ],
)
def test_bad_config_values_are_named(key: str, value: object, pattern: str) -> None:
    config = TaskConfig(**{"name": "digits", key: value})
    with pytest.raises(ConfigError, match=re.escape(pattern)):
        build_task(config, num_workers=3, seed=0)


def test_quadratic_rejects_dirichlet_split_and_negative_noise() -> None:
    with pytest.raises(ConfigError, match=r"task\.split = 'dirichlet'"):
        build_task(
            TaskConfig(name="quadratic", split="dirichlet"), num_workers=2, seed=0
        )
    with pytest.raises(ConfigError, match=r"task\.noise = -1\.0"):
        build_task(TaskConfig(name="quadratic", noise=-1.0), num_workers=2, seed=0)


def test_task_survives_pickling_for_worker_processes() -> None:
    task = cached_task("digits", "cnn")
    copy = pickle.loads(pickle.dumps(task))
    params = task.init_params(torch.Generator().manual_seed(0))[None]
    torch.testing.assert_close(copy.evaluate(params), task.evaluate(params))
    x, y = copy.sample_batches([1], [torch.Generator().manual_seed(0)], 8)
    torch.testing.assert_close(
        copy.gradients(params, x, y), task.gradients(params, x, y)
    )
