"""Canary analysis: judge canary against stable every interval, and promote or roll back.

Examples:
  python -m scripts.monitor_canary --once                       # one check, no action
  python -m scripts.monitor_canary --act                        # drive the rollout to the end
  python -m scripts.monitor_canary --target prompt --act        # a prompt/model canary
  python -m scripts.monitor_canary --source prometheus --prometheus-url http://prom:9090 --act

Exit codes: 0 promoted (or the check says promote), 1 rolled back (or says rollback),
2 usage/configuration error, 3 undecided: --once found no decision, or --duration ran out
before the rollout ended (run the same command again to resume it), 4 a rollback could not
confirm where traffic goes (run `python -m scripts.rollback`). With a cluster backend the
progress is kept in the cluster too (an annotation), so a run from a fresh checkout resumes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from contract.files import REPO_ROOT
from scripts.toolkit import chart, cli
from scripts.toolkit.metrics.factory import SOURCES, source_factory
from scripts.toolkit.monitor import CheckResult, Monitor
from scripts.toolkit.options import add_policy_option, add_target_options, build_target
from scripts.toolkit.policy import Policy, load_policy
from scripts.toolkit.report import decision_record, one_line
from scripts.toolkit.targets import RolloutTarget
from scripts.toolkit.traffic.base import KeepsRolloutState


def build_parser() -> argparse.ArgumentParser:
    parser = cli.base_parser("python -m scripts.monitor_canary", __doc__.split("\n\n")[0])
    option = cli.option
    add_policy_option(parser, "steps, timing and metrics")
    option(
        parser, "--source", choices=SOURCES,
        help="metric source (default: prometheus when --prometheus-url is set, else scrape)",
    )  # fmt: skip
    option(parser, "--prometheus-url", type=cli.http_url, help="Prometheus base URL")
    option(parser, "--act", flag=True, help="step forward on promote, roll back on rollback")
    option(parser, "--once", flag=True, help="one check, then exit")
    option(
        parser, "--duration", type=cli.positive(float),
        help="stop after this many seconds (default: until decided)",
    )  # fmt: skip
    option(
        parser, "--interval", type=cli.positive(float),
        help="seconds between checks (default: the policy's interval_seconds)",
    )  # fmt: skip
    option(
        parser, "--min-step-seconds", type=cli.positive(float),
        help="shortest time at a step (default: the policy's min_step_seconds)",
    )  # fmt: skip
    option(
        parser, "--state-file", type=Path,
        help="where the monitor keeps its progress, to resume after an interruption "
        "(default: .local/rollout/<target>.json)",
    )  # fmt: skip
    option(
        parser, "--chart", type=Path,
        help="where to write the rollout's chart, SVG (default: the state file's, .svg)",
    )  # fmt: skip
    add_target_options(parser)
    return parser


def command(args: argparse.Namespace) -> cli.Outcome:
    policy = load_policy(
        args.policy, interval_seconds=args.interval, min_step_seconds=args.min_step_seconds
    )
    state_file = args.state_file or REPO_ROOT / ".local" / "rollout" / f"{args.target}.json"
    target = build_target(args)
    keeper = in_cluster(target)
    if keeper is not None:
        policy = resume_from_cluster(keeper, policy, state_file, code=args.target == "code")
    monitor = Monitor(
        policy,
        target,
        source_factory(args.source, prometheus_url=args.prometheus_url),
        act=args.act,
        state_file=state_file,
    )

    shown: list[object] = []

    def progress(result: CheckResult) -> None:
        if keeper is not None and not args.dry_run:  # kept in the cluster, for any runner
            keeper.save_monitor_state(state_file.read_text(encoding="utf-8"))
        if monitor.state.plan and monitor.state.step not in shown:  # at each step, once known
            shown.append(monitor.state.step)
            print(plan_text(monitor.state.rate, monitor.state.plan), file=sys.stderr, flush=True)
        elapsed = result.at - monitor.state.started_at
        action = f" -> {result.action}" if result.action else ""
        print(
            f"[{elapsed:6.0f} s] {result.step:g}% {result.decision}{action}: "
            f"{one_line(result.verdict, result.reasons)}",
            file=sys.stderr,
            flush=True,
        )

    # A dry run prints the requests of one check's action: nothing moves, so no check follows.
    once = args.once or args.dry_run
    last = monitor.run(duration=args.duration, once=once, on_check=progress)
    final = monitor.state.final
    status: str = final or last.decision
    exit_code = cli.EXIT_BY_VERDICT[last.decision]
    text = f"{status}: {one_line(last.verdict, last.reasons)}"
    if args.act and final is None and not once:
        # --duration ran out with the rollout under way: not done, whatever the last check said.
        status, exit_code = "unfinished", cli.EXIT_INCONCLUSIVE
        text = (
            f"unfinished: --duration ran out with the canary at {last.step:g}% and the rollout "
            f"undecided; run the same command again to resume it (progress in {state_file})."
        )
    chart_file = args.chart or state_file.with_suffix(".svg")
    chart_file.parent.mkdir(parents=True, exist_ok=True)
    chart_file.write_text(chart.svg(monitor.state.history, policy), encoding="utf-8")
    facts = {
        "target": monitor.state.target,
        "policy": f"{args.policy.name} ({policy.name})",
        "checks": monitor.state.checks,
        "elapsed": f"{time.time() - monitor.state.started_at:.0f} s",
        "action": last.action if args.act else "none (analysis only)",
        "plan": plan_text(monitor.state.rate, monitor.state.plan),
        "assignment": ASSIGNMENT[policy.code_assignment] if args.target == "code" else "by user",
        "chart": str(chart_file),
        **{f"note {i + 1}": note for i, note in enumerate(monitor.state.notes)},
    }
    return cli.Outcome(
        status=status,
        exit_code=exit_code,
        data={
            "decision": last.decision,
            "final": final,
            "last_check": last.to_dict(),
            "history": monitor.state.history,
            "traffic": monitor.state.rate,
            "plan": monitor.state.plan,
            "notes": monitor.state.notes,
            "target": monitor.target.describe(),
            "chart": str(chart_file),
        },
        text=text,
        markdown=decision_record(
            "Canary analysis",
            status,
            last.reasons,
            verdict=last.verdict,
            facts=facts,
            chart=chart.mermaid(monitor.state.history, policy),
        ),
    )


# How a code canary's traffic is assigned, as the judge assumes it (the decision record says it).
ASSIGNMENT = {
    "request": "per request (the split sends each request by chance; the judge tests the "
    "answers' ratio against the weight)",
    "user": "per user (sticky; where a Gateway ignores the route's sessionPersistence it is per "
    "request, and the judge's per-user assumption only skips the ratio test)",
}


def in_cluster(target: RolloutTarget) -> KeepsRolloutState | None:
    """The cluster backend (or registry ConfigMap) that keeps this rollout's state, if any."""
    keeper = getattr(target, "backend", None) or getattr(target, "store", None)
    return keeper if isinstance(keeper, KeepsRolloutState) else None


def resume_from_cluster(
    keeper: KeepsRolloutState, policy: Policy, state_file: Path, *, code: bool = True
) -> Policy:
    """Put the monitor's progress saved in the cluster in `state_file` (the cluster's copy wins:
    the last runner may have been another machine), and the policy's assumption about how code
    canaries are assigned in line with the route: sticky per user when it keeps users on one
    version (sessionPersistence), so the judge never tests a per-request sample ratio there
    (`code`; prompt versions are assigned by user inside the service whatever the policy)."""
    saved = keeper.load_monitor_state()
    if saved is not None:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(saved, encoding="utf-8")
    if code and keeper.assignment() == "user" and policy.code_assignment == "request":
        print(
            "note: the route keeps each user on one version (sessionPersistence): the analysis "
            "assumes code_assignment: user.",
            file=sys.stderr,
        )
        return policy.model_copy(update={"code_assignment": "user"})
    return policy


def plan_text(rate: float | None, plan: list[dict[str, float]]) -> str:
    """The rollout plan at the measured traffic, on one line."""
    if not rate or not plan:
        return "traffic not measured yet"
    steps = "; ".join(
        f"{p['step']:g}%: ~{p['samples']:.0f} canary answers in ~{p['seconds']:.0f} s"
        for p in plan
        if p["step"] < 100
    )
    return f"plan at {rate:.3g} answers/s: {steps}; then 100%"


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser, command, argv)


if __name__ == "__main__":
    sys.exit(main())
