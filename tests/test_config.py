"""Invalid configurations are refused before any work, with one precise line."""

from __future__ import annotations

import re

import pytest

from byzsgd import Config, ConfigError
from byzsgd.api import as_config
from byzsgd.config import default_config, key_docs, load
from byzsgd.validation import resolve

REFUSED = [
    (
        ["num_byzantine_workers=10"],
        "num_byzantine_workers = 10 is not allowed; expected "
        "0 <= num_byzantine_workers < num_workers = 10",
    ),
    (
        ["num_byzantine_servers=-1"],
        "num_byzantine_servers = -1 is not allowed; expected "
        "0 <= num_byzantine_servers < num_servers = 5",
    ),
    (
        ["worker_to_server.quorum=11"],
        "worker_to_server.quorum = 11 is not allowed; expected auto or an integer "
        "in [1, 10] senders",
    ),
    (
        ["worker_to_server.rule='krum'"],
        "worker_to_server.rule = 'krum' with quorum 7 and f = 3: krum requires "
        "m >= 2f + 3; got m = 7, f = 3",
    ),
    (
        ["server_to_server.rule='mean'"],
        "server_to_server.rule = 'mean' with quorum 4 and f = 1: mean requires f = 0",
    ),
    (
        ["worker_to_server.rule='bogus'"],
        "worker_to_server.rule = 'bogus' is not allowed; expected one of: bulyan, "
        "centered_clipping, geometric_median, krum, mda, meamed, mean, median, "
        "multi_krum, trimmed_mean, trimmed_midpoint; optionally after "
        "pre-aggregation steps joined by + (arc, bucketing, nnm)",
    ),
    (
        ["worker_to_server.attack='bogus'"],
        "worker_to_server.attack = 'bogus' is not allowed; "
        "expected one of: adaptive_alie, adaptive_ipm, alie, crash",
    ),
    (
        ["server_to_worker.attack='alie'"],
        "server_to_worker.attack = 'alie' is not allowed; "
        "expected one of: balancing, crash, none, nonfinite,",
    ),
    (["optimizer.lr=nan"], "optimizer.lr = nan is not allowed; expected a finite"),
    (["faults.stragglers=[true]"], "faults.stragglers = [True] is not allowed"),
    (
        ["worker_to_server.attack_options={scale='big'}"],
        "worker_to_server.attack_options = {'scale': 'big'}: attack 'polarise' fails",
    ),
    (
        ["optimizer.lr=0"],
        "optimizer.lr = 0.0 is not allowed; expected a finite number > 0",
    ),
    (
        ["optimizer.lr=-0.5"],
        "optimizer.lr = -0.5 is not allowed; expected a finite number > 0",
    ),
    (["batch_size=0"], "batch_size = 0 is not allowed; expected a finite number > 0"),
    (["bogus_key=1"], "unknown config key 'bogus_key'; allowed here: seed, steps,"),
    (["task.bogus=1"], "unknown config key 'task.bogus'; allowed here: name, model,"),
    (["steps='ten'"], "steps = 'ten' is not allowed; expected a value of type int"),
    (
        ["task.name='cifar'"],
        "task.name = 'cifar' is not allowed; expected one of: digits",
    ),
    (
        ["server_to_server.mixing=1.5"],
        "server_to_server.mixing = 1.5 is not allowed; expected a number in [0, 1]",
    ),
    (
        ["worker_to_server.attack_options={strength=2}"],
        "worker_to_server.attack_options: attack 'polarise' has no option 'strength'",
    ),
    (
        ["worker_to_server.rule_options={radius=2}"],
        "worker_to_server.rule_options: mda has no option 'radius'; its options: none",
    ),
    (
        [
            "worker_to_server.rule='multi_krum'",
            "worker_to_server.policy='all'",
            "worker_to_server.rule_options={num_selected=20}",
        ],
        "worker_to_server.rule_options: multi_krum: num_selected must be an integer "
        "in [1, m = 10], got 20",
    ),
    (
        ["worker_to_server.rule='bucketing+median'"],
        "worker_to_server.rule = 'bucketing+median' with quorum 7 and f = 3: "
        "bucketing+median requires m >= 2f + 1 on the inputs left by bucketing",
    ),
    (
        ["byzantine_workers=[0, 0, 1]"],
        "byzantine_workers = [0, 0, 1] is not allowed; "
        "expected seeded or 3 distinct ids in [0, 10)",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), REFUSED)
def test_refused_with_a_message_naming_key_value_and_allowed(overrides, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        resolve(load(None, overrides))


def test_default_is_valid_and_matches_the_documented_setting() -> None:
    config = default_config()
    topology, plan = resolve(config)
    assert (config.num_servers, config.num_byzantine_servers) == (5, 1)
    assert (config.num_workers, config.num_byzantine_workers) == (10, 3)
    assert config.task.name == "mnist"
    assert (plan.server_to_worker.rule, plan.worker_to_server.rule) == ("median", "mda")
    assert plan.server_to_server.rule == "median"
    assert plan.worker_to_server.quorum == 7 and plan.server_to_server.quorum == 4
    assert len(topology.byzantine_workers) == 3


def test_every_key_is_documented() -> None:
    rows = key_docs()
    assert len(rows) > 40
    assert all(doc for _, _, doc in rows)


def test_overrides_parse_toml_values_and_bare_strings() -> None:
    config = as_config(
        None, ["task.name=digits", "steps=7", "faults.stragglers=[1, 2]"]
    )
    assert (config.task.name, config.steps, config.faults.stragglers) == (
        "digits",
        7,
        [1, 2],
    )
    assert isinstance(as_config(config), Config)


def test_hash_changes_with_any_value() -> None:
    a, b = default_config(), default_config()
    assert a.hash() == b.hash()
    b.server_to_server.mixing = 0.5
    assert a.hash() != b.hash()


def test_beyond_resilience_warns() -> None:
    with pytest.warns(UserWarning, match="num_workers = 10 < 3 num_byzantine_workers"):
        resolve(
            load(
                None,
                [
                    "num_byzantine_workers=4",
                    "worker_to_server.rule='median'",
                    "worker_to_server.policy='all'",
                ],
            )
        )


def test_composite_rules_and_options_resolve() -> None:
    _, plan = resolve(
        load(
            None,
            [
                "worker_to_server.rule='nnm+multi_krum'",
                "worker_to_server.policy='all'",
                "worker_to_server.rule_options={num_selected=4}",
                "server_to_server.rule='trimmed_midpoint'",
                "server_to_server.policy='all'",
            ],
        )
    )
    assert plan.worker_to_server.rule_options == {"num_selected": 4}
    assert plan.server_to_server.quorum == 5
