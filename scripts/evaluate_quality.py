"""Offline quality gate: the golden dataset against a candidate and a baseline, side by side.

Examples:
  # a prompt version against production, on one service (pinned with the admin token)
  ROLLOUT_ADMIN_TOKEN=... python -m scripts.evaluate_quality --url http://127.0.0.1:8000 \\
      --candidate-version v2 --write-evaluation auto --registry-dir registry
  # two deployments, e.g. a code canary against stable (whatever each serves)
  python -m scripts.evaluate_quality --candidate-url http://canary:8000 \\
      --baseline-url http://stable:8000

Exit codes: 0 the candidate passes, 1 it fails the gate, 2 usage or configuration error
(service unreachable, unknown version, bad policy), 3 inconclusive (too few cases).
How the scores, intervals and the gate are defined: scripts/toolkit/evaluation.py and
eval/README.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from scripts.toolkit import cli
from scripts.toolkit.evaluation import (
    Evaluation,
    ScoreResult,
    check_policy,
    evaluate,
    evaluation_path,
    evaluation_record,
    load_dataset,
    resolve_sides,
    write_evaluation,
)
from scripts.toolkit.policy import DEFAULT_POLICY, load_policy
from scripts.toolkit.report import number

QUALITY_SCORES = ("correctness", "required_facts", "groundedness", "refusal_correctness")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Options of evaluate_quality (each falls back to ROLLOUT_<OPTION>)."""
    parser = cli.base_parser("python -m scripts.evaluate_quality", __doc__.split("\n\n")[0])
    env = cli.env
    arms = parser.add_argument_group("what to compare (env ROLLOUT_<OPTION>)")
    arms.add_argument("--url", default=env("url"), help="the service, for pinned versions")
    arms.add_argument(
        "--candidate-version",
        default=env("candidate_version"),
        help="prompt version to evaluate, pinned with the admin headers",
    )
    arms.add_argument(
        "--baseline-version",
        default=env("baseline_version"),
        help="prompt version to compare with (default: the service's production version)",
    )
    arms.add_argument("--candidate-url", default=env("candidate_url"), help="candidate service")
    arms.add_argument("--baseline-url", default=env("baseline_url"), help="baseline service")
    arms.add_argument("--prompt", default=env("prompt", "rag_answer"), help="prompt name")
    arms.add_argument(
        "--admin-token",
        default=env("admin_token"),
        help="the service's APP_ADMIN_TOKEN, needed to pin versions (prefer the env variable)",
    )
    run = parser.add_argument_group("how to run")
    run.add_argument(
        "--policy",
        type=Path,
        default=Path(env("policy", str(DEFAULT_POLICY)) or ""),
        help="rollout policy with the `evaluation:` section (default rollout/policy.yaml)",
    )
    run.add_argument("--dataset", default=env("dataset"), help="golden JSONL (default: policy's)")
    run.add_argument(
        "--limit",
        type=_positive_int,
        default=env("limit"),
        help="only the first N cases (quick checks; gate on the full set)",
    )
    run.add_argument(
        "--concurrency",
        type=_positive_int,
        default=env("concurrency", "8"),
        help="questions in flight at once (default 8)",
    )
    run.add_argument(
        "--timeout",
        type=_positive_float,
        default=env("timeout", "30"),
        help="seconds per request (default 30)",
    )
    run.add_argument(
        "--retries",
        type=int,
        choices=range(6),
        default=env("retries", "2"),
        help="retries of a request that could not connect (default 2); nothing else is retried",
    )
    out = parser.add_argument_group("the registry record")
    out.add_argument(
        "--write-evaluation",
        default=env("write_evaluation"),
        help="write evaluation.json here; `auto` = the candidate's model folder in --registry-dir",
    )
    out.add_argument(
        "--registry-dir",
        type=Path,
        default=Path(env("registry_dir", "registry") or "registry"),
        help="registry folder for --write-evaluation auto (default registry/)",
    )
    return parser


def command(args: argparse.Namespace) -> cli.Outcome:
    """Evaluate, gate, render, and write the registry record when asked."""
    policy = load_policy(args.policy)
    if policy.evaluation is None:
        raise cli.ToolkitError(f"{args.policy} has no `evaluation:` section to gate on.")
    check_policy(policy.evaluation)
    dataset = load_dataset(args.dataset or policy.evaluation.dataset, limit=args.limit)
    candidate, baseline, cand_info, base_info = resolve_sides(
        prompt=args.prompt,
        url=args.url,
        candidate_url=args.candidate_url,
        baseline_url=args.baseline_url,
        candidate_version=args.candidate_version,
        baseline_version=args.baseline_version,
        admin_token=args.admin_token,
        timeout=min(args.timeout, 10.0),
    )
    result = evaluate(
        policy=policy.evaluation,
        dataset=dataset,
        prompt=args.prompt,
        candidate=candidate,
        baseline=baseline,
        candidate_info=cand_info,
        baseline_info=base_info,
        admin_token=args.admin_token,
        concurrency=args.concurrency,
        timeout=args.timeout,
        retries=args.retries,
    )
    data = result.to_dict()
    written = None
    if args.write_evaluation:
        path = evaluation_path(
            args.write_evaluation, registry_dir=args.registry_dir, evaluation=result
        )
        record = evaluation_record(result, policy_path=str(args.policy))
        write_evaluation(path, record, registry_dir=args.registry_dir)
        written = data["evaluation_file"] = str(path)
    return cli.Outcome(
        status=result.status,
        exit_code=result.exit_code,
        data=data,
        errors=result.failures if result.status != "pass" else [],
        text=render_text(result, written),
        markdown=render_markdown(result, written),
    )


# --- rendering ------------------------------------------------------------------------------


def _title(result: Evaluation) -> str:
    return (
        f"{result.prompt} {result.candidate.label()} vs {result.baseline.label()} "
        f"on {len(result.dataset.cases)} cases"
    )


def _signed(value: float | None) -> str:
    text = number(value)
    return f"+{text}" if value is not None and text != "-" and value > 0 else text


def _threshold(score: ScoreResult) -> str:
    parts = []
    if score.margin is not None:
        sign = "≥ -" if score.direction == "higher_is_better" else "≤ +"
        bound = "low" if score.direction == "higher_is_better" else "high"
        parts.append(f"CI {bound} {sign}{number(score.margin)}")
    if score.floor is not None:
        parts.append(f"mean ≥ {number(score.floor)}")
    if score.ceiling is not None:
        parts.append(f"mean ≤ {number(score.ceiling)}")
    return ", ".join(parts) or "-"


def render_text(result: Evaluation, written: str | None) -> str:
    """Human summary for stderr."""
    lines = [f"quality gate {result.status.upper()}: {_title(result)}"]
    for s in result.scores:
        d = s.difference
        lines.append(
            f"  {s.name:<20} baseline {number(s.baseline.mean):>9}  "
            f"candidate {number(s.candidate.mean):>9}  "
            f"diff {_signed(d.mean)} [{number(d.low)}, {number(d.high)}]  {s.verdict}"
        )
    lines += [f"  - {f}" for f in result.failures]
    if written:
        lines.append(f"wrote {written}")
    return "\n".join(lines)


def render_markdown(result: Evaluation, written: str | None) -> str:
    """The decision record for $GITHUB_STEP_SUMMARY."""
    confidence = f"{100 * (1 - result.alpha):g}%"
    cand, base = result.candidate, result.baseline
    lines = [
        f"### Quality evaluation: **{result.status.upper()}**, {_title(result)}",
        "",
        f"- dataset: `{result.dataset.path}` ({len(result.dataset.cases)} of "
        f"{result.dataset.cases_in_file} cases, sha256 `{result.dataset.sha256[:12]}`)",
        f"- candidate: {cand.label()} at {cand.url} ({cand.errors} failed requests)",
        f"- baseline: {base.label()} at {base.url} ({base.errors} failed requests)",
        f"- intervals: Student-t, {confidence} two-sided, paired per question for the "
        "difference; a score passes when the bound on the worse side is within the margin",
        "",
        f"| score | baseline | candidate | difference ({confidence} CI) | threshold | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for s in result.scores:
        d = s.difference
        lines.append(
            f"| {s.name} | {number(s.baseline.mean)} | {number(s.candidate.mean)} "
            f"| {_signed(d.mean)} [{number(d.low)}, {number(d.high)}] (n={d.n}) "
            f"| {_threshold(s)} | **{s.verdict}**: {s.reason} |"
        )
    lines += ["", "By category (candidate, baseline in brackets):", ""]
    lines.append("| category | n | " + " | ".join(QUALITY_SCORES) + " |")
    lines.append("|---|---|" + "---|" * len(QUALITY_SCORES))
    for name, scores in result.categories.items():
        by_name = {s.name: s for s in scores}
        cells = [
            f"{number(by_name[q].candidate.mean)} ({number(by_name[q].baseline.mean)})"
            if by_name[q].difference.n
            else "-"
            for q in QUALITY_SCORES
        ]
        n = sum(r.case.category == name for r in result.cases)
        lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    worst = sorted(
        (r for r in result.cases if r.candidate["correctness"] is not None),
        key=lambda r: (r.candidate["correctness"] or 0) - (r.baseline["correctness"] or 0),
    )[:5]
    regressions = [
        f"- `{r.case.id}` ({r.case.category}): correctness {number(r.baseline['correctness'])}"
        f" → {number(r.candidate['correctness'])}"
        + (f", candidate error: {r.candidate_error}" if r.candidate_error else "")
        for r in worst
        if (r.candidate["correctness"] or 0) < (r.baseline["correctness"] or 0)
    ]
    if regressions:
        lines += ["", "Largest regressions:", *regressions]
    if written:
        lines += ["", f"Recorded in `{written}`."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return cli.run(build_parser(), command, argv)


if __name__ == "__main__":
    sys.exit(main())
