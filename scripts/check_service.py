"""Check a running service against the service contract (docs/service-contract.md).

Each contract item passes, fails (with the reason) or is skipped (`toolkit/conformance.py`).
Example: python -m scripts.check_service --url http://127.0.0.1:8000 --admin-token "$TOKEN"
Exit codes: 0 every item passed (or was skipped), 1 an item failed or the service did not
answer, 2 usage error (bad URL, policy).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict

from scripts.toolkit import cli
from scripts.toolkit.conformance import check_service
from scripts.toolkit.options import add_policy_option
from scripts.toolkit.policy import load_policy
from scripts.toolkit.report import table

CONTRACT = "docs/service-contract.md"


def build_parser() -> argparse.ArgumentParser:
    parser = cli.base_parser("python -m scripts.check_service", __doc__.split("\n\n")[0])
    cli.option(parser, "--url", type=cli.http_url, help="service base URL")
    cli.option(parser, "--admin-token", help="admin token, to check pinning (without: skipped)")
    add_policy_option(parser, "the metric selectors the service must expose")
    cli.option(
        parser, "--timeout", type=cli.positive(float), default=10.0, help="seconds per request"
    )
    return parser


def command(args: argparse.Namespace) -> cli.Outcome:
    if not args.url:
        raise cli.ToolkitError("name the service with --url (or ROLLOUT_URL).")
    policy = load_policy(args.policy)
    items = check_service(
        args.url, policy=policy, admin_token=args.admin_token, timeout=args.timeout
    )
    failed = [i for i in items if i.result == "fail"]
    status = "failed" if failed else "passed"
    counts = {r: sum(i.result == r for i in items) for r in ("pass", "fail", "skip")}
    summary = f"{args.url}: {status} ({counts['pass']} passed, {counts['fail']} failed, "
    summary += f"{counts['skip']} skipped; items: {CONTRACT})"
    lines = [f"{i.result.upper():<4} {i.id}" + (f": {i.reason}" if i.reason else "") for i in items]
    rows = table(["item", "result", "reason"], ([f"`{i.id}`", i.result, i.reason] for i in items))
    return cli.Outcome(
        status=status,
        exit_code=cli.EXIT_FAILED if failed else cli.EXIT_OK,
        data={"url": args.url, "counts": counts, "items": [asdict(i) for i in items]},
        errors=[f"{i.id}: {i.reason}" for i in failed],
        text="\n".join([*lines, summary]),
        markdown="\n".join([f"### Service contract: {summary}", "", *rows]),
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser, command, argv)


if __name__ == "__main__":
    sys.exit(main())
