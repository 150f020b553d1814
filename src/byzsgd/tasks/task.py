"""The learning task every node shares: data, shards, model, batched gradients.

:func:`build_task` turns a :class:`~byzsgd.config.TaskConfig` and a seed into a
:class:`Task`. The simulator and the multi-process runtimes call the same
:meth:`Task.sample_batch`, so a worker's mini-batches depend only on its id, its
generator and the batch size, never on which runtime runs it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.func import grad_and_value, vmap

from byzsgd.config import ConfigError, TaskConfig
from byzsgd.tasks import data, partition, quadratic
from byzsgd.tasks.models import FlatModel, build_model, build_regression_model

logger = logging.getLogger(__name__)

TASKS = ("digits", "mnist", "quadratic")
# Test samples evaluated at once; bounds the memory of evaluate() (the CNN on 28x28
# images needs about 25 KiB of activations a sample).
EVAL_CHUNK = 4096
# Independent random streams derived from the seed, one per use.
_TEST_SPLIT_STREAM, _SHARD_STREAM, _SYNTHETIC_STREAM = 0, 1, 2


@dataclass(eq=False)
class Task:
    """A data set split into worker shards and a model to fit, with batched maths.

    Attributes
    ----------
    name : str
        ``digits``, ``mnist`` or ``quadratic``.
    num_classes : int or None
        Number of classes; None for the regression task ``quadratic``.
    model : FlatModel
        The model, evaluated at flat parameter vectors of length :attr:`dim`.
    x_train, y_train, x_test, y_test : torch.Tensor
        ``float32`` features of shape ``(N, num_features)``; ``int64`` class labels,
        or ``float32`` targets for ``quadratic``.
    shards : list of torch.Tensor
        For each worker ``0 .. num_workers - 1``, the ``int64`` indices into
        ``x_train`` of its non-empty share of the training data.
    optimum : torch.Tensor or None
        ``quadratic`` only: the exact minimiser of the loss on the whole train split.
    """

    name: str
    num_classes: int | None
    model: FlatModel
    x_train: torch.Tensor = field(repr=False)
    y_train: torch.Tensor = field(repr=False)
    x_test: torch.Tensor = field(repr=False)
    y_test: torch.Tensor = field(repr=False)
    shards: list[torch.Tensor] = field(repr=False)
    optimum: torch.Tensor | None = field(default=None, repr=False)

    @property
    def dim(self) -> int:
        """Length of the flat parameter vector."""
        return self.model.dim

    @property
    def num_workers(self) -> int:
        """Number of shards, one per worker id ``0 .. num_workers - 1``."""
        return len(self.shards)

    def init_params(self, generator: torch.Generator) -> torch.Tensor:
        """The common initial point, a ``float32`` vector drawn from ``generator``."""
        return self.model.init_params(generator)

    def sample_batch(
        self, worker: int, generator: torch.Generator, batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` samples of ``worker``'s shard, uniformly with replacement.

        Exactly one draw, ``torch.randint(len(shard), (batch_size,))`` from
        ``generator``, so the batch is a function of the worker, the generator's
        state and the batch size only.
        """
        if batch_size < 1:
            raise ValueError(
                f"batch_size = {batch_size!r} is not allowed; expected >= 1"
            )
        shard = self.shards[worker]
        picks = torch.randint(len(shard), (batch_size,), generator=generator)
        rows = shard[picks]
        return self.x_train[rows], self.y_train[rows]

    def sample_batches(
        self,
        workers: Sequence[int],
        generators: Sequence[torch.Generator],
        batch_size: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`sample_batch` per worker, stacked to ``(w, B, ...)``, ``(w, B)``."""
        if len(workers) != len(generators):
            raise ValueError(
                f"got {len(workers)} workers but {len(generators)} generators"
            )
        batches = [
            self.sample_batch(worker, generator, batch_size)
            for worker, generator in zip(workers, generators, strict=True)
        ]
        return torch.stack([x for x, _ in batches]), torch.stack(
            [y for _, y in batches]
        )

    def gradients(
        self, points: torch.Tensor, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradient and loss of each worker at its own point on its own batch.

        Parameters
        ----------
        points : torch.Tensor
            ``(w, dim)``, one parameter vector per worker.
        x, y : torch.Tensor
            ``(w, B, ...)`` and ``(w, B)``, one batch per worker.

        Returns
        -------
        tuple of torch.Tensor
            Gradients ``(w, dim)`` and mean batch losses ``(w,)``, computed in one
            ``vmap(grad_and_value(model.loss))`` call.
        """
        return vmap(grad_and_value(self.model.loss))(points, x, y)

    @torch.no_grad()
    def evaluate(self, params: torch.Tensor) -> dict[str, torch.Tensor]:
        """Test-split metrics of ``k`` parameter vectors ``(k, dim)`` at once.

        Returns ``{"accuracy", "loss"}`` for classification and ``{"loss",
        "distance_to_optimum"}`` for ``quadratic``, each of shape ``(k,)``. Rows
        with a non-finite entry get ``nan`` accuracy and loss instead of an error.
        """
        if params.ndim != 2 or params.shape[1] != self.dim:
            raise ValueError(
                f"params of shape {tuple(params.shape)} is not allowed; expected"
                f" (k, {self.dim})"
            )
        finite = torch.isfinite(params).all(dim=1)
        safe = torch.where(finite[:, None], params, torch.zeros_like(params))
        loss_sum, correct = self._test_sums(safe)
        nan = torch.full_like(loss_sum, float("nan"))
        metrics = {"loss": torch.where(finite, loss_sum / len(self.y_test), nan)}
        if self.optimum is not None:
            metrics["distance_to_optimum"] = torch.linalg.vector_norm(
                params - self.optimum, dim=1
            )
        else:
            metrics["accuracy"] = torch.where(finite, correct / len(self.y_test), nan)
        return metrics

    def _test_sums(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed test loss and number of correct predictions of each row of params.

        A loop over rows, each on the whole test split in chunks: with the test
        inputs shared by all rows, this is as fast as ``vmap`` for dense models and
        several times faster for the CNN, whose batched-weight convolutions are slow.
        """
        loss_sum = torch.zeros(len(params))
        correct = torch.zeros(len(params))
        for row, flat in enumerate(params):
            for start in range(0, len(self.y_test), EVAL_CHUNK):
                x = self.x_test[start : start + EVAL_CHUNK]
                y = self.y_test[start : start + EVAL_CHUNK]
                outputs = self.model.logits(flat, x)
                loss_sum[row] += self.model.losses(outputs, y).sum()
                if self.num_classes is not None:
                    correct[row] += (outputs.argmax(dim=-1) == y).sum()
        return loss_sum, correct


def build_task(config: TaskConfig, *, num_workers: int, seed: int) -> Task:
    """The task described by ``config``, split across ``num_workers`` workers.

    Everything random (test split, shards, synthetic data) derives from ``seed``
    through independent numpy streams; the global generators are never used.

    Raises
    ------
    ConfigError
        If a name or value of ``config`` is not allowed (the message names the key).

    Examples
    --------
    >>> task = build_task(
    ...     TaskConfig(name="digits", model="logistic"), num_workers=3, seed=0
    ... )
    >>> task.x_train.shape, task.dim, len(task.shards)
    (torch.Size([1438, 64]), 650, 3)
    """
    if config.name not in TASKS:
        raise ConfigError(
            f"task.name = {config.name!r} is not allowed; expected one of:"
            f" {', '.join(TASKS)}"
        )
    if seed < 0:
        raise ConfigError(f"seed = {seed!r} is not allowed; expected a value >= 0")
    if config.name == "quadratic":
        task = _build_quadratic(config, num_workers=num_workers, seed=seed)
    else:
        task = _build_classification(config, num_workers=num_workers, seed=seed)
    sizes = [len(shard) for shard in task.shards]
    logger.info(
        "task %s: %d train / %d test samples, %d parameters, %d workers (%s split,"
        " shards of %d..%d samples)",
        task.name,
        len(task.y_train),
        len(task.y_test),
        task.dim,
        num_workers,
        config.split,
        min(sizes),
        max(sizes),
    )
    return task


def _build_classification(config: TaskConfig, *, num_workers: int, seed: int) -> Task:
    images = _load_images(config)
    if images.x_test is None or images.y_test is None:
        rng = _rng(seed, _TEST_SPLIT_STREAM)
        train, test = partition.train_test_indices(
            len(images.y), test_fraction=config.test_fraction, rng=rng
        )
        x_train, y_train = images.x[train], images.y[train]
        x_test, y_test = images.x[test], images.y[test]
    else:
        x_train, y_train = images.x, images.y
        x_test, y_test = images.x_test, images.y_test
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    model = build_model(
        config.model,
        num_features=x_train.shape[1],
        num_classes=num_classes,
        hidden_size=config.hidden_size,
    )
    return Task(
        name=config.name,
        num_classes=num_classes,
        model=model,
        **_tensors(x_train, y_train, x_test, y_test, label_dtype=torch.int64),
        shards=_shards(y_train, config, num_workers=num_workers, seed=seed),
    )


def _build_quadratic(config: TaskConfig, *, num_workers: int, seed: int) -> Task:
    if config.split == "dirichlet":
        raise ConfigError(
            "task.split = 'dirichlet' is not allowed for task.name = 'quadratic'"
            " (it has no classes); expected 'iid'"
        )
    generated = quadratic.generate(
        dim=config.dim,
        num_samples=config.num_samples,
        noise=config.noise,
        rng=_rng(seed, _SYNTHETIC_STREAM),
    )
    train, test = partition.train_test_indices(
        config.num_samples,
        test_fraction=config.test_fraction,
        rng=_rng(seed, _TEST_SPLIT_STREAM),
    )
    x, y = generated.x, generated.y
    return Task(
        name=config.name,
        num_classes=None,
        model=build_regression_model(config.dim),
        **_tensors(x[train], y[train], x[test], y[test], label_dtype=torch.float32),
        shards=_shards(y[train], config, num_workers=num_workers, seed=seed),
        optimum=quadratic.least_squares(x[train], y[train]),
    )


def _load_images(config: TaskConfig) -> data.ImageData:
    if config.name == "digits":
        return data.load_digits()
    if config.data_dir:
        return data.load_mnist_idx(config.data_dir)
    return data.load_mnist_subset()


def _shards(
    labels: np.ndarray, config: TaskConfig, *, num_workers: int, seed: int
) -> list[torch.Tensor]:
    indices = partition.partition(
        labels,
        num_workers,
        split=config.split,
        alpha=config.dirichlet_alpha,
        rng=_rng(seed, _SHARD_STREAM),
    )
    return [torch.from_numpy(shard) for shard in indices]


def _tensors(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    label_dtype: torch.dtype,
) -> dict[str, torch.Tensor]:
    """Copies of the four arrays as contiguous tensors (features in float32)."""
    features = {"x_train": x_train, "x_test": x_test}
    labels = {"y_train": y_train, "y_test": y_test}
    tensors = {
        key: torch.tensor(value, dtype=torch.float32) for key, value in features.items()
    }
    tensors.update(
        {key: torch.tensor(value, dtype=label_dtype) for key, value in labels.items()}
    )
    return tensors


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])
