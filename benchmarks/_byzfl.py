"""Load ByzFL's aggregation modules without its package ``__init__``.

ByzFL's top-level package imports its whole federated-learning framework, and with it
torchvision, which does not import beside the CPU torch build this project pins.
Registering a bare ``byzfl`` package module first lets Python import the two modules
the benchmark needs, ``byzfl.aggregators.aggregators`` and
``byzfl.aggregators.preaggregators``, and nothing else. ``make bench-env`` installs
ByzFL into ``.venv-bench/``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

WANTED_VERSION = "0.0.11"


def _package_folder() -> Path | None:
    spec = importlib.util.find_spec("byzfl") if "byzfl" not in sys.modules else None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    existing = sys.modules.get("byzfl")
    if existing is not None and getattr(existing, "__path__", None):
        return Path(next(iter(existing.__path__)))
    return None


def _installed_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("byzfl")
    except metadata.PackageNotFoundError:
        return "unknown"


def load() -> tuple[types.SimpleNamespace | None, str]:
    """ByzFL's aggregators and pre-aggregators in one namespace, and a status line.

    Returns ``(None, reason)`` when ByzFL cannot be imported.
    """
    folder = _package_folder()
    if folder is None:
        return None, "ByzFL: not installed (make bench-env)"
    if "byzfl" not in sys.modules:
        stub = types.ModuleType("byzfl")
        stub.__path__ = [str(folder)]
        sys.modules["byzfl"] = stub
    try:
        rules = importlib.import_module("byzfl.aggregators.aggregators")
        steps = importlib.import_module("byzfl.aggregators.preaggregators")
    except ImportError as error:
        return None, f"ByzFL: not importable ({error}); try make bench-env"
    namespace = types.SimpleNamespace(
        **{name: getattr(rules, name) for name in dir(rules) if name[:1].isupper()},
        **{name: getattr(steps, name) for name in dir(steps) if name[:1].isupper()},
    )
    version = _installed_version()
    note = (
        "" if version == WANTED_VERSION else f" (benchmarked against {WANTED_VERSION})"
    )
    return namespace, f"ByzFL {version}{note}, from {folder}"
