"""Check a configuration before any work and resolve it into a topology and a plan.

Every refusal is one ``ConfigError`` line naming the key, the value and what is
allowed. Legal but dubious settings (beyond the protocol's proven resilience) warn.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from typing import Any

import torch

from byzsgd import aggregators, attacks
from byzsgd.config import AUTO, CHANNELS, ChannelConfig, Config, ConfigError
from byzsgd.protocol.plan import LR_SCHEDULES, POLICIES, ChannelPlan, ProtocolPlan
from byzsgd.protocol.topology import SERVER, WORKER, Topology, seeded_byzantine

TASKS = ("digits", "mnist", "quadratic")
MODELS = ("logistic", "mlp", "cnn")
SPLITS = ("iid", "dirichlet")
RUNTIMES = ("simulator", "ray")
DELAYS = ("exponential", "constant")
BYZANTINE_DELAYS = ("fastest", "sampled")


def resolve(config: Config) -> tuple[Topology, ProtocolPlan]:
    """Validate ``config`` and return its topology and protocol plan."""
    _check_scalars(config)
    topology = Topology(
        num_servers=config.num_servers,
        num_workers=config.num_workers,
        byzantine_servers=_byzantine_ids(config, SERVER),
        byzantine_workers=_byzantine_ids(config, WORKER),
        seed=config.seed,
    )
    senders = {
        "server_to_worker": (config.num_servers, config.num_byzantine_servers),
        "worker_to_server": (config.num_workers, config.num_byzantine_workers),
        "server_to_server": (config.num_servers, config.num_byzantine_servers),
    }
    channels = {
        name: _channel_plan(name, getattr(config, name), *senders[name])
        for name in CHANNELS
    }
    plan = ProtocolPlan(
        **channels,
        mixing=config.server_to_server.mixing,
        period=config.server_to_server.period,
        lr=config.optimizer.lr,
        lr_schedule=config.optimizer.lr_schedule,
        lr_decay=config.optimizer.lr_decay,
        batch_size=config.batch_size,
    )
    _warn_beyond_resilience(config)
    return topology, plan


def _refuse(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{key} = {value!r} is not allowed; expected {allowed}")


def _one_of(key: str, value: Any, options: tuple[str, ...] | list[str]) -> None:
    if value not in options:
        raise _refuse(key, value, "one of: " + ", ".join(options))


def _positive(key: str, value: Any) -> None:
    if not _finite_number(value) or value <= 0:
        raise _refuse(key, value, "a finite number > 0")


def _finite_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _ids(value: Any) -> bool:
    """A list of integer ids (not booleans), without duplicates."""
    return (
        isinstance(value, list)
        and all(isinstance(i, int) and not isinstance(i, bool) for i in value)
        and len(set(value)) == len(value)
    )


def _check_scalars(config: Config) -> None:
    for key in ("steps", "batch_size", "eval_every", "num_servers", "num_workers"):
        _positive(key, getattr(config, key))
    _positive("optimizer.lr", config.optimizer.lr)
    if not _finite_number(config.optimizer.lr_decay) or config.optimizer.lr_decay < 0:
        raise _refuse(
            "optimizer.lr_decay", config.optimizer.lr_decay, "a finite number >= 0"
        )
    _one_of("optimizer.lr_schedule", config.optimizer.lr_schedule, LR_SCHEDULES)
    for role, total in (
        ("servers", config.num_servers),
        ("workers", config.num_workers),
    ):
        key = f"num_byzantine_{role}"
        value = getattr(config, key)
        if value < 0 or value >= total:
            raise _refuse(key, value, f"0 <= {key} < num_{role} = {total}")
    if config.threads < 0:
        raise _refuse("threads", config.threads, "an integer >= 0")
    if config.checkpoint_every < 0:
        raise _refuse("checkpoint_every", config.checkpoint_every, "an integer >= 0")
    _one_of("runtime", config.runtime, RUNTIMES)
    _check_task(config)
    _check_faults(config)
    _check_ray(config)
    gather = config.server_to_server
    if not 0.0 <= gather.mixing <= 1.0:
        raise _refuse("server_to_server.mixing", gather.mixing, "a number in [0, 1]")
    if gather.period < 1:
        raise _refuse("server_to_server.period", gather.period, "an integer >= 1")


def _check_task(config: Config) -> None:
    task = config.task
    _one_of("task.name", task.name, TASKS)
    _one_of("task.model", task.model, MODELS)
    _one_of("task.split", task.split, SPLITS)
    _positive("task.dirichlet_alpha", task.dirichlet_alpha)
    if not 0.0 < task.test_fraction < 1.0:
        raise _refuse("task.test_fraction", task.test_fraction, "a number in (0, 1)")
    for key in ("hidden_size", "dim", "num_samples"):
        _positive(f"task.{key}", getattr(task, key))
    if task.noise < 0:
        raise _refuse("task.noise", task.noise, "a number >= 0")


def _check_faults(config: Config) -> None:
    faults = config.faults
    if not 0.0 <= faults.omission < 1.0:
        raise _refuse("faults.omission", faults.omission, "a probability in [0, 1)")
    _one_of("faults.delay", faults.delay, DELAYS)
    _one_of("faults.byzantine_delay", faults.byzantine_delay, BYZANTINE_DELAYS)
    if not _finite_number(faults.straggler_slowdown) or faults.straggler_slowdown < 1.0:
        raise _refuse(
            "faults.straggler_slowdown", faults.straggler_slowdown, "a number >= 1"
        )
    if isinstance(faults.crash_step, bool) or faults.crash_step < 0:
        raise _refuse("faults.crash_step", faults.crash_step, "an integer >= 0")
    for role, total in (("server", config.num_servers), ("worker", config.num_workers)):
        key = f"faults.crash_{role}s"
        ids = getattr(faults, f"crash_{role}s")
        if not _ids(ids) or not all(0 <= i < total for i in ids):
            raise _refuse(key, ids, f"distinct {role} ids in [0, {total})")
    stragglers = faults.stragglers
    if not _ids(stragglers) or not all(0 <= i < config.num_workers for i in stragglers):
        raise _refuse(
            "faults.stragglers",
            stragglers,
            f"distinct worker ids in [0, {config.num_workers})",
        )


def _check_ray(config: Config) -> None:
    ray = config.ray
    _positive("ray.timeout", ray.timeout)
    if ray.num_cpus < 0:
        raise _refuse("ray.num_cpus", ray.num_cpus, "an integer >= 0")
    if ray.max_ahead < 1:
        raise _refuse("ray.max_ahead", ray.max_ahead, "an integer >= 1")
    _one_of("ray.isolation", ray.isolation, ("auto", "namespace", "off"))
    if ray.straggler_delay < 0:
        raise _refuse("ray.straggler_delay", ray.straggler_delay, "a number >= 0")
    if config.runtime == "ray" and importlib.util.find_spec("ray") is None:
        raise _refuse(
            "runtime", "ray", "simulator, or install Ray first (pip install ray)"
        )


def _byzantine_ids(config: Config, role: str) -> tuple[int, ...]:
    key = f"byzantine_{role}s"
    value = getattr(config, key)
    total = getattr(config, f"num_{role}s")
    count = getattr(config, f"num_byzantine_{role}s")
    if value == "seeded":
        return seeded_byzantine(config.seed, role, total, count)
    expected = f"{count} distinct ids in [0, {total}) (num_byzantine_{role}s)"
    if isinstance(value, str) or not _ids(value):
        raise _refuse(key, value, f"seeded or {expected}")
    ids = tuple(sorted(value))
    if not all(0 <= i < total for i in ids) or len(ids) != count:
        raise _refuse(key, value, expected)
    return ids


def _channel_plan(
    name: str, channel: ChannelConfig, num_senders: int, num_byzantine: int
) -> ChannelPlan:
    _one_of(f"{name}.policy", channel.policy, POLICIES)
    try:
        aggregators.get(channel.rule)
    except ValueError:
        steps = ", ".join(aggregators.pre_aggregators())
        raise _refuse(
            f"{name}.rule",
            channel.rule,
            f"one of: {', '.join(aggregators.names())}; optionally after "
            f"pre-aggregation steps joined by + ({steps})",
        ) from None
    _one_of(f"{name}.attack", channel.attack, attacks.names(name))
    f = num_byzantine if channel.f == AUTO else channel.f
    if isinstance(f, str) or not 0 <= f < num_senders:
        raise _refuse(
            f"{name}.f", channel.f, f"auto or an integer in [0, {num_senders})"
        )
    quorum = _quorum(name, channel, num_senders, f)
    condition = aggregators.condition(channel.rule, channel.rule_options)
    try:
        condition.check(channel.rule, quorum, f)
    except ValueError as error:
        raise ConfigError(
            f"{name}.rule = {channel.rule!r} with quorum {quorum} and f = {f}: {error}"
        ) from None
    _check_rule_options(name, channel, quorum, f)
    _check_attack(name, channel, f, quorum)
    return ChannelPlan(
        name=name,
        num_senders=num_senders,
        quorum=quorum,
        policy=channel.policy,
        rule=channel.rule,
        rule_options=dict(channel.rule_options),
        f=f,
        attack=channel.attack,
        attack_options=dict(channel.attack_options),
        include_self=bool(getattr(channel, "include_self", False)),
    )


def _check_attack(name: str, channel: ChannelConfig, f: int, quorum: int) -> None:
    """Build the attack and run it once on a tiny input, before any work."""
    try:
        attack = attacks.make(channel.attack, name, channel.attack_options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{name}.attack_options: {error}") from None
    gen = torch.Generator().manual_seed(0)
    messages = torch.randn(3, 4, generator=gen)
    view = attacks.AttackView(
        step=0,
        channel=name,
        correct_messages=messages,
        num_byzantine=max(f, 1),
        num_receivers=2,
        receiver_positions=messages[:2] if name != "server_to_worker" else None,
        subsets=None,
        rule=channel.rule,
        f=f,
        generator=gen,
        correct_senders=(0, 1, 2),
        byzantine_senders=tuple(range(3, 3 + max(f, 1))),
        quorum=quorum,
        rule_options=dict(channel.rule_options),
    )
    try:
        attack(view)
    except Exception as error:  # any failure of a user's options, before the run
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(
            f"{name}.attack_options = {channel.attack_options!r}: attack "
            f"{channel.attack!r} fails on a test input: {first_line}"
        ) from None


def _check_rule_options(name: str, channel: ChannelConfig, quorum: int, f: int) -> None:
    """Run the rule once on a tiny input, so bad options fail before any work."""
    options = dict(channel.rule_options)
    accepted = aggregators.options(channel.rule) - {"generator"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(
            f"{name}.rule_options: {channel.rule} has no option {unknown[0]!r}; "
            f"its options: {', '.join(sorted(accepted)) or 'none'}"
        )
    if "generator" in aggregators.options(channel.rule):
        options["generator"] = torch.Generator().manual_seed(0)
    try:
        aggregators.get(channel.rule)(torch.zeros(quorum, 2), f=f, **options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{name}.rule_options: {error}") from None


def _quorum(name: str, channel: ChannelConfig, num_senders: int, f: int) -> int:
    if channel.quorum == AUTO:
        return num_senders if channel.policy == "all" else num_senders - f
    quorum = channel.quorum
    if isinstance(quorum, str) or not 1 <= quorum <= num_senders:
        raise _refuse(
            f"{name}.quorum",
            quorum,
            f"auto or an integer in [1, {num_senders}] senders",
        )
    if channel.policy == "all" and quorum != num_senders:
        raise _refuse(
            f"{name}.quorum", quorum, f"{num_senders} (or auto) with policy all"
        )
    return quorum


def _warn_beyond_resilience(config: Config) -> None:
    n_s, f_s = config.num_servers, config.num_byzantine_servers
    n_w, f_w = config.num_workers, config.num_byzantine_workers
    if f_s and n_s < 3 * f_s + 2:
        warnings.warn(
            f"num_servers = {n_s} < 3 num_byzantine_servers + 2 = {3 * f_s + 2}: "
            "beyond the protocol's proven server resilience",
            stacklevel=3,
        )
    if f_w and n_w < 3 * f_w + 1:
        warnings.warn(
            f"num_workers = {n_w} < 3 num_byzantine_workers + 1 = {3 * f_w + 1}: "
            "beyond the protocol's proven worker resilience",
            stacklevel=3,
        )
