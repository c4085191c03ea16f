"""Write the router's state file for docker-compose.yml: the tracks' addresses and weights.

The router (`python -m scripts.toolkit.platform.router`) serves the routing table of a local
platform's state file; in compose no platform writes one, so this does, from the environment:
ROUTER_ADMIN_TOKEN, ROUTER_PORT, ROUTER_BACKENDS (`track=url,...`), ROUTER_WEIGHTS
(`track=percent,...`). Run as `python /deploy/router_state.py <state dir>`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from scripts.toolkit.platform.routing import RoutingTable
from scripts.toolkit.platform.state import PlatformState, StateStore


def pairs(text: str) -> dict[str, str]:
    """`a=1,b=2` as a mapping."""
    return dict(item.split("=", 1) for item in text.split(",") if item)


def main(state_dir: str) -> int:
    """Write `<state_dir>/state.json`; exit 2 with one sentence when a setting is wrong."""
    try:
        table = RoutingTable.build(
            pairs(os.environ["ROUTER_BACKENDS"]),
            {k: float(v) for k, v in pairs(os.environ["ROUTER_WEIGHTS"]).items()},
        )
        state = PlatformState(
            state_dir=state_dir,
            repo=str(Path.cwd()),
            admin_token=os.environ["ROUTER_ADMIN_TOKEN"],
            router_port=int(os.environ.get("ROUTER_PORT", "8000")),
            registry_dir=os.environ.get("APP_REGISTRY_DIR", "registry"),
            prometheus="off",
            routes=table.to_dict(),
        )
    except (KeyError, ValueError) as exc:
        print(f"error: router settings: {exc}", file=sys.stderr)
        return 2
    StateStore(Path(state_dir)).write(state)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
