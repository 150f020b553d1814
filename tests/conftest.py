"""Shared fixtures: small, fast configurations."""

from __future__ import annotations

import pytest
import torch
from hypothesis import settings

from byzsgd.config import Config, from_dict

# Property tests draw the same examples on every run, so a CI run is repeatable.
settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.load_profile("repeatable")


def tiny_config(**overrides: object) -> Config:
    """A digits run that takes well under a second per dozen steps."""
    data: dict = {
        "steps": 12,
        "batch_size": 8,
        "eval_every": 6,
        "num_servers": 5,
        "num_byzantine_servers": 1,
        "num_workers": 6,
        "num_byzantine_workers": 1,
        "task": {"name": "digits", "model": "logistic"},
        "optimizer": {"lr": 0.2},
        "server_to_worker": {"policy": "random", "rule": "median", "attack": "split"},
        "worker_to_server": {"policy": "first", "rule": "mda", "attack": "polarise"},
        "server_to_server": {"policy": "random", "rule": "median", "attack": "split"},
    }
    config = from_dict(data)
    for key, value in overrides.items():
        from byzsgd.config import set_key

        set_key(config, key.replace("__", "."), value)
    return config


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    torch.manual_seed(0)
