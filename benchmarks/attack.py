"""Hostile-client probes of issue 15 against live services on 127.0.0.1; exit 1 when a guarantee fails.

Resources (``benchmarks/_attack_resources.py``, docs/hardening.md "Hostile clients"):

1. grpc_starvation: 70 token-less and 8 authenticated Export streams that never send a message,
   renewed for 20 s, with real Exports beside them (all must succeed);
2. big_requests: six concurrent 13 MiB Exports of the costliest shape, three rounds (RSS < 1 GiB);
3. slowloris: 1,019 HTTP connections trickling a head one byte every 5 s for 40 s (all cut, threads flat);
4. http_bodies: a chunked body holding a second request (one answer), JSON 100,000 deep (400);
5. unwritable_store: 10,000 acknowledged spans, data dir made read-only, SIGTERM (0 lost silently).

    python benchmarks/attack.py                       # every probe
    python benchmarks/attack.py --only slowloris big_requests
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _attack_resources import PROBES as RESOURCE_PROBES  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=sorted(RESOURCE_PROBES), help="run only these probes")
    args = parser.parse_args()
    failed = []
    with tempfile.TemporaryDirectory(prefix="lct-attack-") as tmp:
        for name, probe in RESOURCE_PROBES.items():
            if args.only and name not in args.only:
                continue
            started = time.monotonic()
            result = probe(Path(tmp) / name)
            result["seconds"] = round(time.monotonic() - started, 1)
            result["load"] = [round(x, 2) for x in os.getloadavg()]
            print(json.dumps({"probe": name, **result}, default=str), flush=True)
            if not result.get("ok"):
                failed.append(name)
    print(json.dumps({"failed": failed}))
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
