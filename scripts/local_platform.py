"""`python -m scripts.local_platform up|down|status|deploy|undeploy`: the service's tracks, its
embedded model server, a sticky weighted router and Prometheus as processes on one machine."""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from contract.tracks import TRACKS
from scripts.toolkit import cli
from scripts.toolkit.options import add_platform_option
from scripts.toolkit.platform import lifecycle, tracks
from scripts.toolkit.report import markdown, table


def build_parser() -> argparse.ArgumentParser:
    """Commands and their options (each after its command)."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.local_platform",
        description="Run the service locally as a platform: stable/canary (or blue/green) "
        "instances, the embedded model server, a weighted sticky router on one port, and "
        "Prometheus when installed. Exit codes: 0 done (status: all ready), 1 status degraded "
        "or down, 2 usage or start-up error.",
    )
    common = argparse.ArgumentParser(add_help=False)
    cli.add_output_option(common)
    add_platform_option(common)
    cli.option(
        common, "--timeout", type=cli.positive(float), default=60.0,
        help="seconds to wait for a process to become ready",
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub = functools.partial(commands.add_parser, parents=[common])

    up = sub("up", help="start what is not running")
    cli.option(
        up, "--port", type=int, default_text=str(lifecycle.DEFAULT_PORT),
        help="router port, when the platform is created",
    )  # fmt: skip
    cli.option(
        up, "--prometheus", choices=lifecycle.PROMETHEUS_MODES, default="auto",
        help="run Prometheus: auto (when installed), on (required) or off",
    )  # fmt: skip
    cli.option(
        up, "--service-command", default_text="'python -m app'",
        help="what runs an app instance, when the platform is created: any service that "
        "honours docs/service-contract.md",
    )  # fmt: skip
    sub("down", help="stop everything the platform started")
    sub("status", help="processes, health, router weights")
    deploy = sub("deploy", help="start or replace a track's instance (no downtime)")
    cli.option(deploy, "--track", choices=TRACKS, help="the track to deploy")
    cli.option(
        deploy, "--ref",
        help="git ref of this repository to run, from a worktree (default: the current checkout)",
    )  # fmt: skip
    cli.option(
        deploy, "--env", repeat=True, metavar="KEY=VALUE",
        help="extra setting for the instance, e.g. APP_FAULT_ERROR_RATE=0.5",
    )  # fmt: skip
    undeploy = sub("undeploy", help="route a track's traffic to stable, then stop it")
    cli.option(undeploy, "--track", choices=TRACKS, help="the track to retire")
    return parser


def execute(args: argparse.Namespace) -> cli.Outcome:
    timeout: float = args.timeout
    state_dir: Path = args.platform_dir
    if args.command == "up":
        try:
            service_command = shlex.split(args.service_command or "")
        except ValueError as exc:
            raise cli.ToolkitError(f"--service-command is not a command line: {exc}.") from exc
        result = lifecycle.up(
            state_dir,
            port=args.port,
            prometheus_mode=args.prometheus,
            service_command=service_command,
            timeout=timeout,
        )
        data = result.to_dict()
        lines = [
            f"platform up: router {data['router_url']}",
            f"started: {', '.join(result.started) or 'nothing (already up)'}",
            _source(data),
            *(f"warning: {w}" for w in result.warnings),
        ]
        return _outcome("up", data, lines)
    if args.command == "down":
        down = lifecycle.down(state_dir)
        text = (
            f"platform down: stopped {', '.join(down.stopped) or 'nothing'}"
            if down.was_up
            else "platform down: nothing was running"
        )
        return _outcome("down", down.to_dict(), [text])
    if args.command == "status":
        return _status(lifecycle.status(state_dir))
    if not args.track:
        raise cli.ToolkitError(f"{args.command} needs --track (or ROLLOUT_TRACK).")
    if args.command == "deploy":
        env = tracks.parse_env(args.env)
        record = tracks.deploy(state_dir, track=args.track, ref=args.ref, env=env, timeout=timeout)
        traffic = tracks.traffic(state_dir)
        weight = traffic.weights.get(str(record.track), 0)
        return _outcome(
            "deployed",
            {"deployed": record.to_dict(), "traffic": traffic.to_dict()},
            [f"{record.track} now runs {record.version} at {record.url} (weight {weight:g}%)"],
        )
    traffic = tracks.undeploy(state_dir, track=args.track)
    return _outcome(
        "undeployed",
        {"traffic": traffic.to_dict()},
        [f"{args.track} undeployed; weights now {_weights(traffic.weights)}"],
    )


def _weights(weights: Mapping[str, float]) -> str:
    return ", ".join(f"{t} {w:g}%" for t, w in weights.items()) or "none"


def _source(data: Mapping[str, Any]) -> str:
    url = data["prometheus_url"]
    return f"metric source: {data['metric_source']}" + (f" ({url})" if url else "")


def _status(report: dict[str, Any]) -> cli.Outcome:
    status = report["status"]
    code = cli.EXIT_OK if status == "up" else cli.EXIT_FAILED
    if status == "down":
        lines = [f"platform down (no state in {report['state_dir']})"]
        return _outcome(status, report, lines, exit_code=code, record="### Local platform: down")
    weights = _weights(report["routes"].get("weights", {}))
    lines = [
        f"platform {status}: router {report['router_url']}",
        f"weights ({report['routes_source']}): {weights}",
        _source(report),
    ]
    rows = []
    for name, p in report["processes"].items():
        version = p.get("version") or ""
        shown = f" {version}" if version else ""
        lines.append(f"  {name:<13} pid {p['pid']:<8} {p['url']:<24} {p['health']}{shown}")
        rows.append([name, str(p["pid"]), p["url"], version, p["health"]])
    record = [
        f"### Local platform: {status}",
        "",
        f"Router {report['router_url']}, weights {weights}, metric source "
        f"`{report['metric_source']}`.",
        "",
        *table(["process", "pid", "url", "version", "health"], rows),
    ]
    return _outcome(status, report, lines, exit_code=code, record="\n".join(record))


def _outcome(
    status: str,
    data: dict[str, Any],
    lines: list[str],
    *,
    exit_code: int = cli.EXIT_OK,
    record: str | None = None,
) -> cli.Outcome:
    return cli.Outcome(
        status=status,
        exit_code=exit_code,
        data=data,
        text="\n".join(lines),
        markdown=record or markdown(f"Local platform: {status}", lines),
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser, execute, argv)


if __name__ == "__main__":
    sys.exit(main())
