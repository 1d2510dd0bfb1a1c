"""The running service's SQL endpoint, recorded in the data directory for readers (``report``, ``sql``).

The embedded store can be opened by one process only; when the service holds it, readers find the
endpoint here and query through it instead. The record names the process, so a record left behind by a
killed service is recognised (its process is gone) and ignored.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENDPOINT_FILE", "Endpoint", "forget", "find", "record"]

ENDPOINT_FILE = "sql-endpoint.json"


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    """``http(s)://host:port`` the endpoint listens on."""
    pid: int

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def secure(self) -> bool:
        return self.url.startswith("https://")


def record(data_dir: str, scheme: str, host: str, port: int) -> None:
    """Write the record (atomically) for this process."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"  # a wildcard bind is reachable on loopback from the same machine
    if ":" in host:
        host = f"[{host}]"
    path = Path(data_dir) / ENDPOINT_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": f"{scheme}://{host}:{port}", "pid": os.getpid()}) + "\n")
    os.replace(tmp, path)


def forget(data_dir: str) -> None:
    """Remove this process's record (on stop)."""
    path = Path(data_dir) / ENDPOINT_FILE
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def find(data_dir: str) -> Endpoint | None:
    """The endpoint of the live service holding ``data_dir``, or None."""
    try:
        data = json.loads((Path(data_dir) / ENDPOINT_FILE).read_text())
        endpoint = Endpoint(str(data["url"]), int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(endpoint.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return endpoint
