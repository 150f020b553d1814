"""Splitting a data set into train and test, and the train split across workers.

Every function takes a numpy ``Generator`` and draws from nothing else, so a split
is a pure function of the seed that made the generator.
"""

from __future__ import annotations

import logging

import numpy as np

from byzsgd.config import ConfigError

logger = logging.getLogger(__name__)

SPLITS = ("iid", "dirichlet")
MIN_SHARD_SIZE = 8


def train_test_indices(
    num_samples: int, *, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle ``range(num_samples)``; its first ``test_fraction`` is the test split.

    Examples
    --------
    >>> train, test = train_test_indices(
    ...     10, test_fraction=0.2, rng=np.random.default_rng(0)
    ... )
    >>> len(train), len(test), sorted([*train, *test]) == list(range(10))
    (8, 2, True)
    """
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(
            f"task.test_fraction = {test_fraction!r} is not allowed; expected a value"
            " in (0, 1)"
        )
    num_test = round(num_samples * test_fraction)
    if not 0 < num_test < num_samples:
        raise ConfigError(
            f"task.test_fraction = {test_fraction!r} leaves {num_test} of"
            f" {num_samples} samples for testing; both splits must be non-empty"
        )
    order = rng.permutation(num_samples)
    return np.sort(order[num_test:]), np.sort(order[:num_test])


def partition(
    labels: np.ndarray,
    num_workers: int,
    *,
    split: str,
    alpha: float,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Indices of ``labels`` held by each of ``num_workers`` workers.

    ``iid`` shuffles the samples and cuts them into equal parts (sizes differ by at
    most one). ``dirichlet`` draws, for each class ``c``, the shares
    ``p_c ~ Dirichlet(alpha, ..., alpha)`` of the workers and gives worker ``i`` the
    fraction ``p_c[i]`` of that class's samples; small ``alpha`` gives each worker
    few classes. Every shard is then topped up to at least
    ``min(MIN_SHARD_SIZE, len(labels) // num_workers)`` samples, taken at random
    from the largest shards.

    Returns
    -------
    list of np.ndarray
        One sorted ``int64`` index array per worker; together they partition
        ``range(len(labels))``.

    Examples
    --------
    >>> labels = np.repeat(np.arange(3), 20)
    >>> shards = partition(
    ...     labels, 4, split="dirichlet", alpha=0.1, rng=np.random.default_rng(0)
    ... )
    >>> sum(len(shard) for shard in shards), min(len(shard) for shard in shards) >= 8
    (60, True)
    """
    _check_partition(len(labels), num_workers, split=split, alpha=alpha)
    if split == "iid":
        shards = np.array_split(rng.permutation(len(labels)), num_workers)
    else:
        shards = _dirichlet_shards(labels, num_workers, alpha=alpha, rng=rng)
        minimum = min(MIN_SHARD_SIZE, len(labels) // num_workers)
        shards = _top_up(shards, minimum, rng=rng)
    logger.debug(
        "%s split over %d workers: shard sizes %d..%d",
        split,
        num_workers,
        min(len(shard) for shard in shards),
        max(len(shard) for shard in shards),
    )
    return [np.sort(shard).astype(np.int64) for shard in shards]


def _check_partition(
    num_samples: int, num_workers: int, *, split: str, alpha: float
) -> None:
    if split not in SPLITS:
        raise ConfigError(
            f"task.split = {split!r} is not allowed; expected one of:"
            f" {', '.join(SPLITS)}"
        )
    if split == "dirichlet" and not alpha > 0.0:
        raise ConfigError(
            f"task.dirichlet_alpha = {alpha!r} is not allowed; expected a value > 0"
        )
    if not 1 <= num_workers <= num_samples:
        raise ConfigError(
            f"num_workers = {num_workers!r} is not allowed; expected between 1 and the"
            f" {num_samples} training samples"
        )


def _dirichlet_shards(
    labels: np.ndarray, num_workers: int, *, alpha: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Per class, cut the shuffled samples at the cumulative Dirichlet shares."""
    pieces: list[list[np.ndarray]] = [[] for _ in range(num_workers)]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        shares = rng.dirichlet(np.full(num_workers, alpha))
        cuts = np.round(np.cumsum(shares)[:-1] * len(members)).astype(np.int64)
        for worker, piece in enumerate(np.split(members, cuts)):
            pieces[worker].append(piece)
    return [np.concatenate(parts) for parts in pieces]


def _top_up(
    shards: list[np.ndarray], minimum: int, *, rng: np.random.Generator
) -> list[np.ndarray]:
    """Move random samples from the largest shard into each shard below ``minimum``."""
    shards = [rng.permutation(shard) for shard in shards]
    for worker in range(len(shards)):
        while len(shards[worker]) < minimum:
            donor = max(range(len(shards)), key=lambda i: len(shards[i]))
            needed = min(minimum - len(shards[worker]), len(shards[donor]) - minimum)
            moved, shards[donor] = shards[donor][:needed], shards[donor][needed:]
            shards[worker] = np.concatenate([shards[worker], moved])
    return shards
