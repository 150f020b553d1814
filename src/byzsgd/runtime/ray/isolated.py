"""Run a local Ray instance inside a network namespace that has only loopback.

Ray binds some of its servers to every interface and probes for its external
address; inside a fresh network namespace the only interface is ``lo``, so nothing
it does can leave the machine's loopback. The launcher starts this module under
``unshare --net --map-root-user`` and reads its records as JSON lines on stdout.
"""

from __future__ import annotations

import fcntl
import functools
import json
import shutil
import signal
import socket
import struct
import subprocess
import sys
from typing import Any

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up() -> None:
    """Bring ``lo`` up (a new network namespace starts with it down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def interfaces() -> list[str]:
    """The network interfaces this process can see."""
    with open("/proc/net/dev") as handle:
        return [line.split(":")[0].strip() for line in handle.readlines()[2:]]


@functools.lru_cache(maxsize=1)
def namespace_command() -> list[str] | None:
    """The command prefix that runs a program in a loopback-only namespace, if any."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    command = [unshare, "--net", "--map-root-user"]
    probe = subprocess.run([*command, "true"], capture_output=True, check=False)
    return command if probe.returncode == 0 else None


MARK = "@byzsgd "


def emit(kind: str, payload: Any) -> None:
    """One message to the launcher: a marked JSON line (Ray may print too)."""
    from byzsgd.recording import dumps

    sys.stdout.write(MARK + dumps({"kind": kind, "payload": payload}) + "\n")
    sys.stdout.flush()


def main() -> int:
    from byzsgd.config import from_dict
    from byzsgd.runtime.ray.launcher import RayRunner

    # On SIGTERM (sent too when the launcher dies), unwind so Ray shuts down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    loopback_up()
    config = from_dict(json.loads(sys.stdin.read()))
    config.ray.isolation = "off"  # already isolated
    runner = RayRunner(config)
    emit("interfaces", interfaces())
    for record in runner.records():
        emit("record", record)
    emit("final", runner.final_evaluation())
    emit(
        "stats",
        {
            "node_stats": runner.node_stats,
            "step_seconds": runner.step_seconds,
            "startup_seconds": runner.startup_seconds,
            "actor_memory": runner.actor_memory,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
