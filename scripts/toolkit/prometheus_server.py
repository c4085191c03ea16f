"""Run a real Prometheus as a plain process (local platform, demo, tests) when one is installed.

Targets come from a file-based service discovery file that can be rewritten while Prometheus
runs (a track restarted on another port is picked up within a second or two).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from contract.files import atomic_write
from scripts.toolkit.processes import ManagedProcess

CONFIG = """\
global:
  scrape_interval: {interval}ms
  evaluation_interval: {interval}ms
scrape_configs:
  - job_name: services
    scrape_interval: {interval}ms
    scrape_timeout: {timeout}ms
    file_sd_configs:
      - files: ["{targets}"]
        refresh_interval: 1s
"""


def prometheus_binary() -> str | None:
    """Path of the `prometheus` executable, if installed (Debian: apt-get install prometheus)."""
    return shutil.which("prometheus")


def write_targets(path: Path, targets: dict[str, list[str]]) -> None:
    """Write the discovery file: `{group: ["127.0.0.1:8001", ...]}`, each target labelled
    `group=<name>` and scraped at `/metrics` unless it names its path (`127.0.0.1:8000/-/metrics`,
    the router's); written atomically so Prometheus never reads half a file."""
    groups = [
        {
            "targets": [host],
            "labels": {"group": name, "__metrics_path__": f"/{metrics or 'metrics'}"},
        }
        for name, hosts in sorted(targets.items())
        for host, _, metrics in (target.partition("/") for target in hosts)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(groups, indent=2))


def command(
    *, port: int, workdir: Path, targets_file: Path, scrape_interval: float = 1.0
) -> list[str]:
    """The command line of Prometheus on 127.0.0.1:`port` with its config and data in
    `workdir` (written here) and its targets in `targets_file`."""
    binary = prometheus_binary()
    if binary is None:
        raise FileNotFoundError("prometheus is not installed (apt-get install prometheus)")
    workdir.mkdir(parents=True, exist_ok=True)
    if not targets_file.exists():
        write_targets(targets_file, {})
    config = workdir / "prometheus.yml"
    config.write_text(
        CONFIG.format(
            interval=round(scrape_interval * 1000),
            timeout=round(max(scrape_interval * 0.8, 0.5) * 1000),
            targets=targets_file.resolve(),
        ),
        encoding="utf-8",
    )
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1d",
        "--web.enable-lifecycle",
    ]


def start_prometheus(
    *, port: int, workdir: Path, targets_file: Path, scrape_interval: float = 1.0
) -> ManagedProcess:
    """Start Prometheus (see `command`); call `wait_http("/-/ready")` on the result (the first
    query answers a few seconds after start)."""
    args = command(
        port=port, workdir=workdir, targets_file=targets_file, scrape_interval=scrape_interval
    )
    log = workdir / "prometheus.log"
    return ManagedProcess("prometheus", args, port, dict(os.environ), log).start()
