"""Run a GitHub Actions workflow of .github/workflows/ on this machine, as GitHub would run it.

Examples:
  python -m scripts.run_workflow deploy.yml                     # a push to main, no cluster:
                                                                #   deploy jobs skipped, green
  python -m scripts.run_workflow deploy.yml --var ROLLOUT_BACKEND=local \\
      --env-var production:ROLLOUT_PLATFORM_DIR=.local/platform --assume-success test
                                                                # the local platform as the cluster
  python -m scripts.run_workflow rollback.yml --event workflow_dispatch \\
      --input environment=production --input reason="bad answers" --var ROLLOUT_BACKEND=local

Jobs run in `needs` order; `run:` steps with GitHub's shell (bash --noprofile --norc -eo
pipefail); `${{ }}` and `if:` by GitHub's own evaluator (npm @actions/expressions);
GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH and GITHUB_STEP_SUMMARY files; reusable workflows and
local composite actions expanded; every other action replaced by its declared stand-in
(.github/local-stand-ins.yaml). `--cancel-after JOB=SECONDS` cancels the run as GitHub's
cancel button does (SIGINT to the running step, SIGTERM 7.5 s later); so does Ctrl-C.

Exit codes: 0 the run succeeded, 1 it failed or was cancelled, 2 usage error.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from contract.files import REPO_ROOT
from scripts.toolkit import cli
from scripts.toolkit.platform.gitrefs import git
from scripts.toolkit.report import table
from scripts.toolkit.workflow.expressions import Evaluator
from scripts.toolkit.workflow.model import Settings
from scripts.toolkit.workflow.runner import Run
from scripts.toolkit.workflow.standins import load_stand_ins

WORKFLOWS = Path(".github") / "workflows"


def pairs(values: list[str], what: str) -> dict[str, str]:
    """`NAME=VALUE` items as a mapping; a malformed one is a usage error."""
    result: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise cli.ToolkitError(f"{what} takes NAME=VALUE, not {item!r}.")
        result[name] = value
    return result


def scoped(values: list[str], what: str) -> dict[str, dict[str, str]]:
    """`ENVIRONMENT:NAME=VALUE` items, by environment."""
    result: dict[str, dict[str, str]] = {}
    for item in values:
        environment, sep, rest = item.partition(":")
        if not sep or not environment:
            raise cli.ToolkitError(f"{what} takes ENVIRONMENT:NAME=VALUE, not {item!r}.")
        result.setdefault(environment, {}).update(pairs([rest], what))
    return result


def seconds_by_job(values: list[str]) -> dict[str, float]:
    result: dict[str, float] = {}
    for name, value in pairs(values, "--cancel-after").items():
        try:
            result[name] = float(value)
        except ValueError:
            raise cli.ToolkitError(
                f"--cancel-after {name}= takes seconds, not {value!r}."
            ) from None
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = cli.base_parser("python -m scripts.run_workflow", __doc__.split("\n\n")[0])
    parser.add_argument("workflow", nargs="?", help="a file of .github/workflows/ (name or path)")
    option = cli.option
    option(
        parser, "--event", default="push",
        choices=["push", "pull_request", "workflow_dispatch"], help="the triggering event",
    )  # fmt: skip
    option(parser, "--sha", help="the commit the run is for (default: HEAD)")
    option(parser, "--ref", default="refs/heads/main", help="the ref the run is for")
    option(parser, "--input", repeat=True, metavar="NAME=VALUE", help="a workflow_dispatch input")
    option(parser, "--var", repeat=True, metavar="NAME=VALUE", help="a repository variable")
    option(parser, "--secret", repeat=True, metavar="NAME=VALUE", help="a repository secret")
    option(
        parser, "--env-var", repeat=True, metavar="ENV:NAME=VALUE",
        help="a variable of a GitHub environment (staging, production)",
    )  # fmt: skip
    option(
        parser, "--env-secret", repeat=True, metavar="ENV:NAME=VALUE",
        help="a secret of a GitHub environment",
    )  # fmt: skip
    option(
        parser, "--assume-success", repeat=True, metavar="JOB",
        help="a job not run here, counted as success (e.g. `test`, which CI runs)",
    )  # fmt: skip
    option(
        parser, "--cancel-after", repeat=True, metavar="JOB=SECONDS",
        help="cancel the run this long after JOB (a path like canary/monitor) started",
    )  # fmt: skip
    return parser


def command(args: argparse.Namespace) -> cli.Outcome:
    if not args.workflow:
        raise cli.ToolkitError("name the workflow to run, e.g. deploy.yml.")
    workflow = Path(args.workflow)
    if not workflow.exists():
        workflow = REPO_ROOT / WORKFLOWS / args.workflow
    if not workflow.is_file():
        raise cli.ToolkitError(f"no workflow {args.workflow}: name a file of {WORKFLOWS}/.")
    sha = args.sha or git("rev-parse", "HEAD")
    try:
        before = git("rev-parse", f"{sha}~1")  # a push of one commit
    except cli.ToolkitError:
        before = ""
    environments: dict[str, dict[str, dict[str, str]]] = {}
    for kind, values in (("vars", args.env_var), ("secrets", args.env_secret)):
        for name, items in scoped(values, f"--env-{kind[:-1]}").items():
            environments.setdefault(name, {})[kind] = items
    settings = Settings(
        workspace=REPO_ROOT,
        event=args.event,
        sha=sha,
        before=before,
        ref=args.ref,
        stand_ins=load_stand_ins(REPO_ROOT),
        inputs=pairs(args.input, "--input"),
        vars=pairs(args.var, "--var"),
        secrets=pairs(args.secret, "--secret"),
        environments=environments,
        assume_success=frozenset(args.assume_success),
        cancel_after=seconds_by_job(args.cancel_after),
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    evaluator = Evaluator()
    run = Run(settings, evaluator)

    def cancel(signum: int, _frame: object) -> None:
        # Ctrl-C (or SIGTERM) cancels the run as GitHub's button does: the running step gets
        # SIGINT, then SIGTERM; jobs with always()/cancelled() still run. A second one stops.
        print(f"== cancelling the run ({signal.Signals(signum).name})", file=sys.stderr)
        run.cancelled.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    previous = {s: signal.signal(s, cancel) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        jobs = run.run(workflow)
    finally:
        evaluator.close()
        for number, handler in previous.items():
            signal.signal(number, handler)
    results = [j.result for j in jobs.values()]
    conclusion = (
        "cancelled" if run.cancelled.is_set()
        else "failure" if "failure" in results
        else "success"
    )  # fmt: skip
    rows = [[path, job.result, f"{job.seconds:.0f} s"] for path, job in jobs.items()]
    notices = [f"{a.level} ({a.job}): {a.title + ': ' if a.title else ''}{a.message}"
               for a in run.annotations]  # fmt: skip
    text = "\n".join(
        [f"workflow {workflow.name}: {conclusion}", *table(["job", "result", "time"], rows)]
    )
    summaries = "\n\n".join(f"<!-- {path} -->\n{summary}" for path, summary in run.summaries())
    return cli.Outcome(
        status=conclusion,
        exit_code=cli.EXIT_OK if conclusion == "success" else cli.EXIT_FAILED,
        data={
            "workflow": str(workflow.relative_to(REPO_ROOT))
            if workflow.is_relative_to(REPO_ROOT)
            else str(workflow),
            "conclusion": conclusion,
            "jobs": {path: job.to_dict() for path, job in jobs.items()},
            "annotations": [a.__dict__ for a in run.annotations],
            "summaries": dict(run.summaries()),
        },
        text=text + ("\n" + "\n".join(notices) if notices else ""),
        markdown=summaries,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser, command, argv)


if __name__ == "__main__":
    sys.exit(main())
