"""Post-deploy smoke test: the service is ready, runs the expected version, and answers well.

Checks `/healthz`, `/readyz` (a real model call), `/version` (optionally the expected
app_version), then asks a few golden questions (pinned to a prompt version with the admin
token when given) and requires answers without errors, with citations for answerable
questions, under a latency bound.

Example: python -m scripts.smoke_test --url http://127.0.0.1:8000 --expect-version abc1234
Exit codes: 0 passed, 1 a check failed, 2 usage error (bad options, dataset missing).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from scripts.toolkit import cli

REPO = Path(__file__).resolve().parents[1]


def build_parser() -> argparse.ArgumentParser:
    """Options of smoke_test."""
    parser = cli.base_parser("python -m scripts.smoke_test", __doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default=cli.env("url", "http://127.0.0.1:8000"),
        help="service base URL (env ROLLOUT_URL)",
    )
    parser.add_argument(
        "--expect-version",
        default=cli.env("expect_version"),
        help="fail unless /version reports this app_version",
    )
    parser.add_argument(
        "--prompt-version",
        default=cli.env("prompt_version"),
        help="pin questions to this prompt version (needs --admin-token)",
    )
    parser.add_argument(
        "--admin-token",
        default=cli.env("admin_token"),
        help="admin token for pinning (env ROLLOUT_ADMIN_TOKEN)",
    )
    parser.add_argument("--dataset", type=Path, default=REPO / "eval" / "golden.jsonl")
    parser.add_argument("--questions", type=int, default=5, help="golden questions to ask")
    parser.add_argument(
        "--max-latency", type=float, default=5.0, help="seconds an answer may take at most"
    )
    parser.add_argument("--timeout", type=float, default=10.0)
    return parser


def _cases(path: Path, count: int) -> list[dict[str, Any]]:
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    except (OSError, ValueError) as exc:
        raise cli.ToolkitError(f"cannot read the dataset {path}: {exc}.") from exc
    answerable = [r for r in rows if r.get("answerable")]
    return answerable[: max(count - 1, 1)] + [r for r in rows if not r.get("answerable")][:1]


def run_checks(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every check as {check, ok, detail}."""
    checks: list[dict[str, Any]] = []

    def record(name: str, ok: bool, detail: str) -> None:
        checks.append({"check": name, "ok": ok, "detail": detail})

    headers = {}
    if args.prompt_version:
        if not args.admin_token:
            raise cli.ToolkitError("--prompt-version needs --admin-token (or ROLLOUT_ADMIN_TOKEN).")
        headers = {"X-Pin-Prompt-Version": args.prompt_version, "X-Admin-Token": args.admin_token}
    with httpx.Client(base_url=args.url, timeout=args.timeout) as client:
        try:
            health = client.get("/healthz")
        except httpx.TransportError as exc:
            raise cli.ToolkitError(
                f"cannot reach {args.url}: {exc}.", exit_code=cli.EXIT_FAILED
            ) from exc
        record("healthz", health.status_code == 200, f"HTTP {health.status_code}")
        ready = client.get("/readyz")
        record("readyz", ready.status_code == 200, ready.text[:200])
        version = client.get("/version").json()
        expected = args.expect_version
        record(
            "version",
            expected is None or version.get("app_version") == expected,
            f"app_version {version.get('app_version')}"
            + (f", expected {expected}" if expected else ""),
        )
        for case in _cases(args.dataset, args.questions):
            started = time.perf_counter()
            response = client.post(
                "/v1/answer",
                json={"question": case["question"], "user_id": "smoke-test"},
                headers=headers,
            )
            elapsed = time.perf_counter() - started
            name = f"answer {case['id']}"
            if response.status_code != 200:
                record(name, False, f"HTTP {response.status_code}: {response.text[:200]}")
                continue
            body = response.json()
            good = bool(body["answer"]) and elapsed <= args.max_latency
            if case["answerable"]:
                good = good and bool(body["citations"]) and not body["quality"]["refused"]
            detail = (
                f"{elapsed * 1000:.0f} ms, {body['prompt']['version']}, "
                f"refused={body['quality']['refused']}, citations={len(body['citations'])}"
            )
            record(name, good, detail)
    return checks


def command(args: argparse.Namespace) -> cli.Outcome:
    """Run the checks and report."""
    checks = run_checks(args)
    failed = [c for c in checks if not c["ok"]]
    table = "\n".join(
        ["| check | ok | detail |", "|---|---|---|"]
        + [f"| {c['check']} | {'yes' if c['ok'] else '**no**'} | {c['detail']} |" for c in checks]
    )
    status = "failed" if failed else "passed"
    text = "\n".join(f"{'ok  ' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}" for c in checks)
    return cli.Outcome(
        status=status,
        exit_code=cli.EXIT_FAILED if failed else cli.EXIT_OK,
        data={"url": args.url, "checks": checks},
        text=text,
        markdown=f"### Smoke test of {args.url}: **{status}**\n\n{table}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return cli.run(build_parser(), command, argv)


if __name__ == "__main__":
    sys.exit(main())
