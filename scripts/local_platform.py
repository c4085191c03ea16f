"""`python -m scripts.local_platform up|down|status|deploy|undeploy`: the service's tracks, its
embedded model server, a sticky weighted router and Prometheus as processes on one machine."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scripts.toolkit import cli
from scripts.toolkit.platform import lifecycle, tracks
from scripts.toolkit.platform.state import APP_TRACKS


def build_parser() -> argparse.ArgumentParser:
    """Commands and options; every option falls back to a ROLLOUT_* variable."""
    parser = cli.base_parser(
        "python -m scripts.local_platform",
        "Run the service locally as a platform: stable/canary (or blue/green) instances, the "
        "embedded model server, a weighted sticky router on one port, and Prometheus when "
        "installed. Exit codes: 0 done (status: all ready), 1 status degraded or down, "
        "2 usage or start-up error.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help="state folder: state file, logs, registry copy, worktrees "
        "(env ROLLOUT_PLATFORM_DIR, default .local/platform)",
    )
    common.add_argument(
        "--timeout",
        type=float,
        default=argparse.SUPPRESS,
        help="seconds to wait for a process to become ready (env ROLLOUT_PLATFORM_TIMEOUT, "
        "default 60)",
    )
    common.add_argument("--output", choices=["text", "json"], default=argparse.SUPPRESS)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(cli.env("platform_dir", str(lifecycle.DEFAULT_STATE_DIR)) or "."),
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--timeout", type=float, default=None, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", parents=[common], help="start what is not running")
    up.add_argument(
        "--port",
        type=int,
        default=_int_env("platform_port"),
        help="router port, when the platform is created (env ROLLOUT_PLATFORM_PORT, default 8000)",
    )
    up.add_argument(
        "--prometheus",
        choices=lifecycle.PROMETHEUS_MODES,
        default=cli.env("platform_prometheus", "auto"),
        help="run Prometheus: auto (when installed), on (required) or off "
        "(env ROLLOUT_PLATFORM_PROMETHEUS, default auto)",
    )
    commands.add_parser("down", parents=[common], help="stop everything the platform started")
    commands.add_parser("status", parents=[common], help="processes, health, router weights")

    deploy = commands.add_parser(
        "deploy", parents=[common], help="start or replace a track's instance (no downtime)"
    )
    deploy.add_argument(
        "--track", choices=APP_TRACKS, default=cli.env("track"), help="env ROLLOUT_TRACK"
    )
    deploy.add_argument(
        "--ref",
        default=cli.env("ref"),
        help="git ref of this repository to run, from a worktree (env ROLLOUT_REF; "
        "default: the current checkout)",
    )
    deploy.add_argument(
        "--env",
        action="append",
        metavar="KEY=VALUE",
        default=None,
        help="extra setting for the instance, e.g. APP_FAULT_ERROR_RATE=0.5 (repeatable)",
    )
    undeploy = commands.add_parser(
        "undeploy", parents=[common], help="route a track's traffic to stable, then stop it"
    )
    undeploy.add_argument(
        "--track", choices=APP_TRACKS, default=cli.env("track"), help="env ROLLOUT_TRACK"
    )
    return parser


def _int_env(name: str) -> int | None:
    value = cli.env(name)
    if value is None:
        return None
    if not value.isdigit():
        raise cli.ToolkitError(f"ROLLOUT_{name.upper()} must be a port number, not {value!r}.")
    return int(value)


def execute(args: argparse.Namespace) -> cli.Outcome:
    """Run the chosen command."""
    timeout = args.timeout if args.timeout is not None else cli.env_float("platform_timeout", 60)
    state_dir: Path = args.state_dir
    if args.command == "up":
        result = lifecycle.up(
            state_dir, port=args.port, prometheus_mode=args.prometheus, timeout=timeout
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
                f"(weight {traffic.table.weights.get(str(record.track), 0):g}%)"
            ],
        )
    if not args.track:
        raise cli.ToolkitError("undeploy needs --track (or ROLLOUT_TRACK).")
    traffic = tracks.undeploy(state_dir, track=args.track)
    return _outcome(
        "undeployed",
        {"traffic": traffic.to_dict()},
        [f"{args.track} undeployed; weights now {_weights(traffic.table.weights)}"],
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
    try:
        parser = build_parser()
    except cli.ToolkitError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    return cli.run(parser, execute, argv)


if __name__ == "__main__":
    sys.exit(main())
