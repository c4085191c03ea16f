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
    """Run the chosen command."""
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
            f"metric source: {data['metric_source']}"
            + (f" ({data['prometheus_url']})" if data["prometheus_url"] else ""),
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
        report = lifecycle.status(state_dir)
        code = cli.EXIT_OK if report["status"] == "up" else cli.EXIT_FAILED
        outcome = _outcome(report["status"], report, _status_lines(report), exit_code=code)
        outcome.markdown = _status_markdown(report)
        return outcome
    if args.command == "deploy":
        if not args.track:
            raise cli.ToolkitError("deploy needs --track (or ROLLOUT_TRACK).")
        record = tracks.deploy(
            state_dir,
            track=args.track,
            ref=args.ref,
            env=tracks.parse_env(args.env),
            timeout=timeout,
        )
        traffic = tracks.traffic(state_dir)
        data = {"deployed": record.to_dict(), "traffic": traffic.to_dict()}
        return _outcome(
            "deployed",
            data,
            [
                f"{record.track} now runs {record.version} at {record.url} "
                f"(weight {traffic.weights.get(str(record.track), 0):g}%)"
            ],
        )
    if not args.track:
        raise cli.ToolkitError("undeploy needs --track (or ROLLOUT_TRACK).")
    traffic = tracks.undeploy(state_dir, track=args.track)
    return _outcome(
        "undeployed",
        {"traffic": traffic.to_dict()},
        [f"{args.track} undeployed; weights now {_weights(traffic.weights)}"],
    )


def _weights(weights: Mapping[str, float]) -> str:
    return ", ".join(f"{t} {w:g}%" for t, w in weights.items()) or "none"


def _status_lines(report: dict[str, Any]) -> list[str]:
    if report["status"] == "down":
        return [f"platform down (no state in {report['state_dir']})"]
    lines = [
        f"platform {report['status']}: router {report['router_url']}",
        f"weights ({report['routes_source']}): {_weights(report['routes'].get('weights', {}))}",
        f"metric source: {report['metric_source']}"
        + (f" ({report['prometheus_url']})" if report["prometheus_url"] else ""),
    ]
    for name, p in report["processes"].items():
        version = f" {p['version']}" if p.get("version") else ""
        lines.append(f"  {name:<13} pid {p['pid']:<8} {p['url']:<24} {p['health']}{version}")
    return lines


def _status_markdown(report: dict[str, Any]) -> str:
    if report["status"] == "down":
        return "### Local platform: down"
    rows = [
        f"| {name} | {p['pid']} | {p['url']} | {p.get('version') or ''} | {p['health']} |"
        for name, p in report["processes"].items()
    ]
    return "\n".join(
        [
            f"### Local platform: {report['status']}",
            "",
            f"Router {report['router_url']}, weights "
            f"{_weights(report['routes'].get('weights', {}))}, metric source "
            f"`{report['metric_source']}`.",
            "",
            "| process | pid | url | version | health |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )


def _outcome(
    status: str, data: dict[str, Any], lines: list[str], *, exit_code: int = cli.EXIT_OK
) -> cli.Outcome:
    markdown = "### Local platform: " + status + "\n\n" + "\n".join(f"- {line}" for line in lines)
    return cli.Outcome(
        status=status, exit_code=exit_code, data=data, text="\n".join(lines), markdown=markdown
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run one command, render its outcome."""
    return cli.run(build_parser, execute, argv)


if __name__ == "__main__":
    sys.exit(main())
