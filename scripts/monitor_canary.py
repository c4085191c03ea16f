"""Canary analysis: judge canary against stable every interval, and promote or roll back.

Examples:
  python -m scripts.monitor_canary --once                       # one check, no action
  python -m scripts.monitor_canary --act                        # drive the rollout to the end
  python -m scripts.monitor_canary --target prompt --act        # a prompt/model canary
  python -m scripts.monitor_canary --source prometheus --prometheus-url http://prom:9090 --act

Exit codes: 0 promoted (or the check says promote), 1 rolled back (or says rollback),
2 usage/configuration error, 3 still undecided when --once or --duration ends.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from scripts.toolkit import cli
from scripts.toolkit.metrics import MetricSource, PrometheusSource, ScrapeSource
from scripts.toolkit.monitor import CheckResult, Monitor
from scripts.toolkit.options import REPO, add_policy_option, add_target_options, build_target
from scripts.toolkit.policy import load_policy
from scripts.toolkit.report import decision_record, one_line

EXIT_BY_DECISION = {
    "promote": cli.EXIT_OK,
    "rollback": cli.EXIT_FAILED,
    "hold": cli.EXIT_INCONCLUSIVE,
}


def build_parser() -> argparse.ArgumentParser:
    """Options of monitor_canary."""
    parser = cli.base_parser("python -m scripts.monitor_canary", __doc__.split("\n\n")[0])
    add_policy_option(parser, "steps, timing and metrics")
    parser.add_argument(
        "--source",
        choices=["scrape", "prometheus"],
        default=cli.env("source"),
        help="metric source (default: prometheus when --prometheus-url is set)",
    )
    parser.add_argument(
        "--prometheus-url",
        default=cli.env("prometheus_url"),
        help="Prometheus base URL (env ROLLOUT_PROMETHEUS_URL)",
    )
    parser.add_argument(
        "--act",
        action="store_true",
        default=cli.env("act") == "true",
        help="step forward on promote and roll back on rollback (env ROLLOUT_ACT=true)",
    )
    parser.add_argument("--once", action="store_true", help="one check, then exit")
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: until decided)",
    )
    parser.add_argument(
        "--interval", type=float, default=None, help="override the policy's interval_seconds"
    )
    parser.add_argument(
        "--min-step-seconds",
        type=float,
        default=None,
        help="override the policy's min_step_seconds",
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help="where the monitor keeps its progress, to resume after an "
        "interruption (default: .local/rollout/<target>.json)",
    )
    add_target_options(parser)
    return parser


def _source(args: argparse.Namespace, started: float) -> MetricSource:
    kind = args.source or ("prometheus" if args.prometheus_url else "scrape")
    if kind == "prometheus":
        if not args.prometheus_url:
            raise cli.ToolkitError(
                "--source prometheus needs --prometheus-url (or ROLLOUT_PROMETHEUS_URL)."
            )
        return PrometheusSource(url=args.prometheus_url, start=started)
    return ScrapeSource()


def command(args: argparse.Namespace) -> cli.Outcome:
    """Run the analysis and render its outcome."""
    policy = load_policy(
        args.policy, interval_seconds=args.interval, min_step_seconds=args.min_step_seconds
    )
    target = build_target(args)
    state_file = args.state_file or REPO / ".local" / "rollout" / f"{args.target}.json"
    # The Prometheus window starts with the rollout (resumed runs keep their start).
    monitor = Monitor(policy, target, None, act=args.act, state_file=state_file)
    monitor.attach(_source(args, monitor.state.started_at))

    def progress(result: CheckResult) -> None:
        elapsed = result.at - monitor.state.started_at
        action = f" -> {result.action}" if result.action else ""
        print(
            f"[{elapsed:6.0f} s] {result.step:g}% {result.decision}{action}: "
            f"{one_line(result.verdict, result.reasons)}",
            file=sys.stderr,
            flush=True,
        )

    last = monitor.run(duration=args.duration, once=args.once, on_check=progress)
    decision = last.decision
    final = monitor.state.final
    exit_code = EXIT_BY_DECISION[decision]
    status = final or decision
    facts = {
        "target": monitor.state.target,
        "policy": f"{args.policy.name} ({policy.name})",
        "checks": monitor.state.checks,
        "elapsed": f"{time.time() - monitor.state.started_at:.0f} s",
        "action": last.action or "none (analysis only)" if not args.act else last.action,
    }
    markdown = decision_record(
        "Canary analysis", status, last.reasons, verdict=last.verdict, facts=facts
    )
    return cli.Outcome(
        status=status,
        exit_code=exit_code,
        data={
            "decision": decision,
            "final": final,
            "last_check": last.to_dict(),
            "history": monitor.state.history,
            "target": target.describe(),
        },
        text=f"{status}: {one_line(last.verdict, last.reasons)}",
        markdown=markdown,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return cli.run(build_parser(), command, argv)


if __name__ == "__main__":
    sys.exit(main())
