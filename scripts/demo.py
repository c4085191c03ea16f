"""The demo: three rollouts on the local platform, decided by the canary analysis alone.

1. a good code canary, promoted step by step to 100%;
2. a code canary that fails a quarter of its answers (fault injection), rolled back;
3. a prompt version that drops the retrieved context (quality falls), rolled back.

It starts the local platform in its own folder (`.local/demo`), puts steady load on it with
locust (users asking golden-set questions and rating some answers), runs each rollout with
`monitor_canary`'s engine acting on its decisions, prints a report with the decision records
(also written to `.local/demo-report.md`), and stops everything it started.

The policy is `rollout/policy.yaml` with a faster clock for a demo (steps 20/50/100, a 2 s
interval, 6 s minimum per step) and 150 samples per step instead of 200: the margins, limits
and statistics are the production ones.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from contract.files import REPO_ROOT
from contract.tracks import Track
from scripts.toolkit import chart, cli, registry_ops
from scripts.toolkit.load import locust_args
from scripts.toolkit.metrics.factory import source_factory
from scripts.toolkit.monitor import CheckResult, Monitor
from scripts.toolkit.platform import lifecycle, tracks
from scripts.toolkit.platform.state import StateStore, track_urls
from scripts.toolkit.policy import DEFAULT_POLICY, Policy, load_policy
from scripts.toolkit.processes import python_module
from scripts.toolkit.registry_store import FolderStore
from scripts.toolkit.report import decision_record, one_line
from scripts.toolkit.targets import CodeTarget, PromptTarget, RolloutOutcome, RolloutTarget
from scripts.toolkit.traffic.local import LocalBackend

DEMO_DIR = REPO_ROOT / ".local" / "demo"
DEMO_TIMING = {
    "steps": [20, 50, 100],
    "interval_seconds": 2,
    "min_step_seconds": 6,
    "max_step_seconds": 90,
    "max_missing_seconds": 20,
    "min_samples": 150,
}


@dataclass
class Rollout:
    """One rollout of the demo and how it ended."""

    title: str
    expected: RolloutOutcome
    checks: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0
    final: RolloutOutcome | None = None
    record: str = ""

    @property
    def ok(self) -> bool:
        return self.final == self.expected


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bar(percent: float, width: int = 20) -> str:
    """A text bar of the canary's share."""
    filled = round(width * percent / 100)
    return "█" * filled + "·" * (width - filled)


def run_rollout(
    rollout: Rollout, policy: Policy, target: RolloutTarget, state_dir: Path
) -> Rollout:
    """Drive one rollout to its end with the monitor acting on every decision."""
    say(f"\n== {rollout.title}")
    # Prometheus when the platform runs one, else scraping each track.
    url = StateStore(state_dir).read().prometheus_url
    monitor = Monitor(policy, target, source_factory(None, prometheus_url=url), act=True)
    source = f"Prometheus ({url})" if url else "scrape of each track's /metrics"
    say(f"   metrics: {source}; checking every {policy.interval_seconds:g} s")

    def progress(result: CheckResult) -> None:
        rollout.checks.append(result)
        elapsed = result.at - monitor.state.started_at
        action = f"  -> {result.action}" if result.action else ""
        canary_n = (
            max((m.canary_n for m in result.verdict.metrics), default=0) if result.verdict else 0
        )
        why = one_line(result.verdict, result.reasons)[:90]
        say(
            f"   [{elapsed:5.0f} s] canary {result.step:5.1f}% {bar(result.step)} "
            f"n={canary_n:5.0f}  {result.decision:8s}{action}  {why}"
        )

    started = time.monotonic()
    last = monitor.run(duration=300, once=False, on_check=progress)
    rollout.seconds = time.monotonic() - started
    rollout.final = monitor.state.final
    svg = state_dir.parent / f"demo-{rollout.title.split(':')[0].lower().replace(' ', '-')}.svg"
    svg.write_text(chart.svg(monitor.state.history, policy), encoding="utf-8")
    facts = {
        "expected": rollout.expected,
        "outcome": rollout.final or "undecided",
        "duration": f"{rollout.seconds:.0f} s",
        "checks": monitor.state.checks,
        "candidate": monitor.state.target,
        "chart": svg.name,
    }
    rollout.record = decision_record(
        rollout.title,
        rollout.final or last.decision,
        last.reasons,
        verdict=last.verdict,
        facts=facts,
        chart=chart.mermaid(monitor.state.history, policy),
    )
    mark = "ok" if rollout.ok else "UNEXPECTED"
    say(f"   => {rollout.final or 'undecided'} after {rollout.seconds:.0f} s ({mark})")
    return rollout


def demo(args: argparse.Namespace) -> list[Rollout]:
    """Run the three rollouts; the platform and the load stop whatever happens."""
    state_dir: Path = args.platform_dir
    if state_dir.exists() and state_dir.resolve() != DEMO_DIR and any(state_dir.iterdir()):
        raise cli.ToolkitError(
            f"{state_dir} is not empty; the demo starts its platform afresh and deletes what its "
            "folder holds: give it a new or empty --platform-dir."
        )
    if state_dir.exists():
        lifecycle.down(state_dir)
        shutil.rmtree(state_dir)
    policy = load_policy(DEFAULT_POLICY, **DEMO_TIMING)
    say("== starting the local platform (model server, stable, router, Prometheus if installed)")
    lifecycle.up(state_dir, port=args.port, prometheus_mode="auto")
    router = StateStore(state_dir).read().router_url
    say(f"   router {router}; stable {track_urls(state_dir).get('stable')}")
    load = python_module(  # steady load, bounded to 15 minutes
        "load", "locust", port=0, log_dir=state_dir / "logs", cwd=REPO_ROOT,
        args=locust_args(router, users=args.users, seconds=900, extra=("--stop-timeout", "5")),
        env={"LOAD_RATE": str(args.rate), "LOAD_FEEDBACK": "0.3", "LOAD_SEED": "7"},
    ).start()  # fmt: skip
    say(f"   load: {args.users} users x {args.rate:g} answers/s, 30% rated (locust)")
    rollouts: list[Rollout] = []
    try:
        time.sleep(args.warmup)
        backend = LocalBackend(state_dir)

        def code_target() -> CodeTarget:
            urls = track_urls(state_dir)
            stable, canary = urls.get(Track.STABLE, []), urls.get(Track.CANARY, [])
            return CodeTarget(backend, stable, canary, router_url=router)

        say("\n== deploying a good canary (this checkout, a new version label)")
        tracks.deploy(state_dir, track=Track.CANARY, env={"APP_VERSION": "demo-good"})
        good = Rollout("Rollout 1: good code canary", RolloutOutcome.PROMOTED)
        rollouts.append(run_rollout(good, policy, code_target(), state_dir))

        say("\n== deploying a canary that fails 25% of its answers (APP_FAULT_ERROR_RATE=0.25)")
        tracks.deploy(
            state_dir,
            track=Track.CANARY,
            env={"APP_VERSION": "demo-erroring", "APP_FAULT_ERROR_RATE": "0.25"},
        )
        erroring = Rollout("Rollout 2: erroring code canary", RolloutOutcome.ROLLED_BACK)
        rollouts.append(run_rollout(erroring, policy, code_target(), state_dir))

        say("\n== registering prompt rag_answer v2-no-context (drops the context) as canary")
        registry = Path(StateStore(state_dir).read().registry_dir)
        candidate = REPO_ROOT / "examples" / "prompts" / "rag_answer" / "v2-no-context.yaml"
        registry_ops.add_version(registry, "rag_answer", candidate)
        registry_ops.start_canary(registry, "rag_answer", "v2-no-context", policy.steps[0])
        time.sleep(1.0)  # the instances reload the registry every 0.5 s
        urls = track_urls(state_dir)
        prompt = PromptTarget(
            FolderStore(registry),
            "rag_answer",
            urls.get(Track.STABLE, []) + urls.get(Track.CANARY, []),
        )
        dropping = Rollout("Rollout 3: prompt that drops the context", RolloutOutcome.ROLLED_BACK)
        rollouts.append(run_rollout(dropping, policy, prompt, state_dir))
    finally:
        load.stop()
        if not args.keep:
            say("\n== stopping the platform")
            lifecycle.down(state_dir)
    return rollouts


def report(rollouts: list[Rollout], path: Path) -> str:
    """The summary table and every decision record, in Markdown."""
    lines = [
        "## Demo report",
        "",
        "| rollout | expected | outcome | time | checks |",
        "|---|---|---|---:|---:|",
    ]
    for r in rollouts:
        lines.append(
            f"| {r.title} | {r.expected} | {r.final or 'undecided'} "
            f"| {r.seconds:.0f} s | {len(r.checks)} |"
        )
    lines += ["", *(r.record + "\n" for r in rollouts)]
    text = "\n".join(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text


def command(args: argparse.Namespace) -> cli.Outcome:
    started = time.monotonic()
    rollouts = demo(args)
    path = args.platform_dir.parent / "demo-report.md"
    text = report(rollouts, path)
    ok = len(rollouts) == 3 and all(r.ok for r in rollouts)
    total = time.monotonic() - started
    summary = "\n".join(
        f"  {r.title}: {r.final or 'undecided'} in {r.seconds:.0f} s" for r in rollouts
    )
    rows = [
        {"title": r.title, "expected": r.expected, "final": r.final, "seconds": round(r.seconds, 1)}
        for r in rollouts
    ]
    return cli.Outcome(
        status="passed" if ok else "failed",
        exit_code=cli.EXIT_OK if ok else cli.EXIT_FAILED,
        data={"rollouts": rows, "seconds": round(total, 1)},
        text=f"\n{text}\n\nDemo {'finished' if ok else 'FAILED'} in {total:.0f} s:\n{summary}\n"
        f"Report: {path}",
        markdown=text,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = cli.base_parser("python -m scripts.demo", __doc__.split("\n\n")[0])
    option = cli.option
    option(
        parser, "--platform-dir", type=Path, default=DEMO_DIR, default_text=".local/demo",
        help="the demo platform's folder (emptied first; the report goes next to it)",
    )  # fmt: skip
    option(parser, "--port", type=int, default=8000, help="the demo router's port")
    option(parser, "--users", type=cli.positive(int), default=40, help="simulated users")
    option(parser, "--rate", type=cli.positive(float), default=4.0, help="answers/s per user")
    option(parser, "--warmup", type=float, default=5.0, help="seconds of load before rollouts")
    option(parser, "--keep", flag=True, help="leave the platform running")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser, command, argv)


if __name__ == "__main__":
    sys.exit(main())
