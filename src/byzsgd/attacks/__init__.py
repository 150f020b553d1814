"""Byzantine behaviours: one message per (Byzantine sender, receiver) on a channel.

``get(name)`` returns an attack class, ``make(name, channel, options)`` an instance
checked against its channel, ``names(channel)`` the valid names.
"""

from byzsgd.attacks import adaptive, common, servers, workers
from byzsgd.attacks.base import (
    ALL_CHANNELS,
    SERVER_TO_SERVER,
    SERVER_TO_WORKER,
    WORKER_TO_SERVER,
    Attack,
    AttackView,
    get,
    make,
    names,
    register,
)

__all__ = [
    "ALL_CHANNELS",
    "SERVER_TO_SERVER",
    "SERVER_TO_WORKER",
    "WORKER_TO_SERVER",
    "Attack",
    "AttackView",
    "adaptive",
    "common",
    "get",
    "make",
    "names",
    "register",
    "servers",
    "workers",
]
