"""Tests of IDX reading, MNIST from a folder, and the train/test and worker splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from byzsgd.config import ConfigError, TaskConfig
from byzsgd.tasks import build_task
from byzsgd.tasks.data import load_mnist_idx, read_idx, write_idx
from byzsgd.tasks.partition import MIN_SHARD_SIZE, partition, train_test_indices


def write_tiny_mnist(
    folder: Path, *, num_train: int = 30, num_test: int = 7, spelling: str = "-"
) -> dict[str, np.ndarray]:
    """Four IDX files of random 28x28 byte images; ``spelling`` "." or "-"."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images": rng.integers(0, 256, (num_train, 28, 28), dtype=np.uint8),
        "train-labels": rng.integers(0, 10, num_train, dtype=np.uint8),
        "t10k-images": rng.integers(0, 256, (num_test, 28, 28), dtype=np.uint8),
        "t10k-labels": rng.integers(0, 10, num_test, dtype=np.uint8),
    }
    arrays["train-labels"][:10] = np.arange(10)
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        kind = "idx3-ubyte" if array.ndim == 3 else "idx1-ubyte"
        suffix = ".gz" if stem.startswith("train") else ""
        write_idx(folder / f"{stem}{spelling}{kind}{suffix}", array)
    return arrays


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-3, 0, 70000], dtype=np.int32),
        np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2),
    ],
    ids=["uint8", "int32", "float32"],
)
def test_idx_round_trip(tmp_path: Path, array: np.ndarray, suffix: str) -> None:
    path = tmp_path / f"array-idx{suffix}"
    write_idx(path, array)
    read = read_idx(path)
    assert read.dtype == array.dtype
    np.testing.assert_array_equal(read, array)


def test_idx_header_is_big_endian(tmp_path: Path) -> None:
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 2, 0, 0, 1, 0, 0, 0, 0, 1]) + bytes(256))
    assert read_idx(path).shape == (256, 1)


def test_idx_rejects_bad_magic_and_truncation(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(bytes([1, 0, 8, 1, 0, 0, 0, 1, 5]))
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 4, 5]))
    with pytest.raises(ValueError, match="implies 12"):
        read_idx(short)


@pytest.mark.parametrize("spelling", ["-", "."])
def test_mnist_folder_is_read_with_its_official_test_split(
    tmp_path: Path, spelling: str
) -> None:
    arrays = write_tiny_mnist(tmp_path, spelling=spelling)
    images = load_mnist_idx(tmp_path)
    assert images.x.shape == (30, 784) and images.x.dtype == np.float32
    assert images.x_test is not None and images.x_test.shape == (7, 784)
    np.testing.assert_allclose(
        images.x[3], arrays["train-images"][3].reshape(-1) / 255.0, rtol=1e-6
    )
    np.testing.assert_array_equal(images.y, arrays["train-labels"])

    config = TaskConfig(name="mnist", model="cnn", data_dir=str(tmp_path))
    task = build_task(config, num_workers=3, seed=0)
    assert task.x_train.shape == (30, 784) and task.x_test.shape == (7, 784)
    np.testing.assert_array_equal(task.y_test.numpy(), arrays["t10k-labels"])


def test_missing_mnist_folder_and_file_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=r"nowhere.*not a folder"):
        load_mnist_idx(missing)
    write_tiny_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="'t10k-labels-idx1-ubyte'"):
        load_mnist_idx(tmp_path)


def test_train_test_indices_partition_and_reject_bad_fraction() -> None:
    train, test = train_test_indices(
        100, test_fraction=0.25, rng=np.random.default_rng(1)
    )
    assert len(test) == 25
    np.testing.assert_array_equal(np.sort(np.r_[train, test]), np.arange(100))
    with pytest.raises(ConfigError, match=r"task\.test_fraction = 1\.5"):
        train_test_indices(100, test_fraction=1.5, rng=np.random.default_rng(1))


@settings(max_examples=60, deadline=None)
@given(
    num_samples=st.integers(1, 300),
    num_classes=st.integers(1, 12),
    num_workers=st.integers(1, 40),
    split=st.sampled_from(["iid", "dirichlet"]),
    alpha=st.floats(0.01, 100.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_shards_partition_the_samples_and_are_never_empty(
    num_samples: int,
    num_classes: int,
    num_workers: int,
    split: str,
    alpha: float,
    seed: int,
) -> None:
    num_workers = min(num_workers, num_samples)
    labels = np.random.default_rng(seed).integers(0, num_classes, num_samples)
    rng = np.random.default_rng(seed)
    shards = partition(labels, num_workers, split=split, alpha=alpha, rng=rng)
    assert len(shards) == num_workers
    np.testing.assert_array_equal(
        np.sort(np.concatenate(shards)), np.arange(num_samples)
    )
    floor = min(MIN_SHARD_SIZE, num_samples // num_workers)
    assert min(len(shard) for shard in shards) >= max(floor, 1)


def test_shards_reject_more_workers_than_samples() -> None:
    with pytest.raises(ConfigError, match="num_workers = 6"):
        partition(np.zeros(5), 6, split="iid", alpha=1.0, rng=np.random.default_rng())


def test_dirichlet_alpha_must_be_positive() -> None:
    config = TaskConfig(name="digits", split="dirichlet", dirichlet_alpha=0.0)
    with pytest.raises(ConfigError, match=r"task\.dirichlet_alpha = 0\.0"):
        build_task(config, num_workers=3, seed=0)


def test_tensors_are_copies_of_the_cached_arrays() -> None:
    task = build_task(TaskConfig(name="digits"), num_workers=2, seed=0)
    task.x_train.zero_()
    again = build_task(TaskConfig(name="digits"), num_workers=2, seed=0)
    assert torch.count_nonzero(again.x_train) > 0
