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
How the scores, intervals and the gate are defined: scripts/toolkit/evaluation/ (scoring.py,
intervals.py, gate.py) and eval/README.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from scripts.toolkit import cli
from scripts.toolkit.evaluation import quality_gate
from scripts.toolkit.options import add_policy_option


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
    add_policy_option(run, "its `evaluation:` section")
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
    """The options, mapped to one library call."""
    return quality_gate(
        policy_path=args.policy,
        prompt=args.prompt,
        url=args.url,
        candidate_url=args.candidate_url,
        baseline_url=args.baseline_url,
        candidate_version=args.candidate_version,
        baseline_version=args.baseline_version,
        admin_token=args.admin_token,
        dataset=args.dataset,
        limit=args.limit,
        concurrency=args.concurrency,
        timeout=args.timeout,
        retries=args.retries,
        write_to=args.write_evaluation,
        registry_dir=args.registry_dir,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return cli.run(build_parser(), command, argv)


if __name__ == "__main__":
    sys.exit(main())
