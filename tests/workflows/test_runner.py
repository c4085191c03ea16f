"""The local runner runs a workflow as GitHub does: needs order, `if:` and status functions by
GitHub's evaluator, the files of a step, reusable workflows and local actions, stand-ins, and
cancelling (SIGINT, then SIGTERM 7.5 s later) with the jobs that run after a cancel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.workflow.expressions import Evaluator
from scripts.toolkit.workflow.model import Settings
from scripts.toolkit.workflow.runner import Run
from scripts.toolkit.workflow.standins import load_stand_ins

STAND_INS = {
    "schema_version": 1,
    "actions": {
        "actions/checkout": {"notice": "the workspace is the checkout"},
        "example/tool": {"run": 'echo "got $INPUT_WHAT" > "$GITHUB_WORKSPACE/tool-$INPUT_WHAT"'},
        "example/cloud-login": {"refuse": "no cloud here"},
    },
}


@pytest.fixture(scope="module")
def evaluator() -> Iterator[Evaluator]:
    node = Evaluator()
    yield node
    node.close()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "local-stand-ins.yaml").write_text(yaml.safe_dump(STAND_INS))
    return tmp_path


def write(workspace: Path, name: str, data: dict[str, Any]) -> Path:
    path = workspace / ".github" / "workflows" / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def job(*steps: dict[str, Any], **keys: Any) -> dict[str, Any]:
    return {"runs-on": "ubuntu-latest", "timeout-minutes": 5, **keys, "steps": list(steps)}


def run(
    workspace: Path, evaluator: Evaluator, path: Path, **settings: Any
) -> tuple[Run, dict[str, Any]]:
    lines: list[str] = []
    options = {"event": "push", "sha": "0" * 40, "ref": "refs/heads/main", **settings}
    the_run = Run(
        Settings(
            workspace=workspace,
            stand_ins=load_stand_ins(workspace),
            log=lines.append,
            **options,
        ),
        evaluator,
    )
    jobs = the_run.run(path)
    return the_run, {**jobs, "log": "\n".join(lines)}


def test_jobs_run_in_needs_order_with_outputs_env_path_and_summaries(
    workspace: Path, evaluator: Evaluator
) -> None:
    flow = write(workspace, "flow.yml", {
        "on": "push",
        "env": {"GREETING": "hello"},
        "jobs": {
            "second": job(
                {"run": 'test "$FROM_FIRST" = 42 && echo "ok=$FROM_FIRST" >> "$GITHUB_OUTPUT"',
                 "id": "check", "env": {"FROM_FIRST": "${{ needs.first.outputs.answer }}"}},
                needs="first", outputs={"ok": "${{ steps.check.outputs.ok }}"},
            ),
            "first": job(
                {"id": "a", "run": 'echo "answer=$((6 * 7))" >> "$GITHUB_OUTPUT"\n'
                 'echo "LATER=$GREETING world" >> "$GITHUB_ENV"\n'
                 'mkdir -p "$RUNNER_TEMP/bin"\n'
                 'printf "#!/bin/sh\\necho tool\\n" > "$RUNNER_TEMP/bin/t"\n'
                 'chmod +x "$RUNNER_TEMP/bin/t" && echo "$RUNNER_TEMP/bin" >> "$GITHUB_PATH"'},
                {"run": 'test "$LATER" = "hello world" && test "$(t)" = tool\n'
                 'echo "### summary of first" >> "$GITHUB_STEP_SUMMARY"\n'
                 "test '${{ format('{0}-{1}', github.event_name, fromJSON('[1, 2]')[1]) }}'"
                 " = push-2"},
                outputs={"answer": "${{ steps.a.outputs.answer }}"},
            ),
        },
    })  # fmt: skip
    _, jobs = run(workspace, evaluator, flow)
    assert list(jobs)[:2] == ["first", "second"]
    assert jobs["first"].result == "success", jobs["log"]
    assert jobs["second"].outputs == {"ok": "42"}
    assert "### summary of first" in jobs["first"].summary


def test_if_conditions_follow_github_status_semantics(
    workspace: Path, evaluator: Evaluator
) -> None:
    flow = write(workspace, "flow.yml", {
        "on": "push",
        "jobs": {
            "fails": job(
                {"run": "exit 3"},
                {"run": "echo never"},
                {"if": "failure()", "id": "cleanup", "run": "echo cleaned"},
                {"if": "always()", "run": "true"},
            ),
            "tolerant": job({"run": "exit 1", "continue-on-error": True}, {"run": "true"}),
            "after": job({"run": "true"}, needs="fails"),
            "on-failure": job({"run": "true"}, needs="fails", **{"if": "failure()"}),
            "plain-result": job({"run": "true"}, needs="fails",
                                **{"if": "needs.fails.result == 'failure'"}),
            "downstream": job({"run": "true"}, needs="after", **{"if": "always()"}),
        },
    })  # fmt: skip
    _, jobs = run(workspace, evaluator, flow)
    assert jobs["fails"].result == "failure"
    outcomes = [s.outcome for s in jobs["fails"].steps]
    assert outcomes == ["failure", "skipped", "success", "success"]
    assert jobs["tolerant"].result == "success"
    assert jobs["after"].result == "skipped"
    assert jobs["on-failure"].result == "success"
    # No status function: GitHub reads it as success() && (...), which is false here.
    assert jobs["plain-result"].result == "skipped"
    assert jobs["downstream"].result == "success"


def test_a_reusable_workflow_gets_typed_inputs_and_secrets_and_gives_outputs(
    workspace: Path, evaluator: Evaluator
) -> None:
    write(workspace, "_stage.yml", {
        "on": {"workflow_call": {
            "inputs": {"count": {"type": "number", "default": 1},
                       "loud": {"type": "boolean", "default": False},
                       "name": {"type": "string", "required": True}},
            "secrets": {"TOKEN": {"required": True}},
            "outputs": {"said": {"value": "${{ jobs.say.outputs.said }}"}},
        }},
        "jobs": {"say": job(
            {"id": "s", "env": {"COUNT": "${{ inputs.count }}", "TOKEN": "${{ secrets.TOKEN }}",
                                "LOUD": "${{ inputs.loud && 'yes' || 'no' }}",
                                "NAME": "${{ inputs.name }}"},
             "run": 'echo "said=$NAME $COUNT $LOUD ${#TOKEN}" >> "$GITHUB_OUTPUT"; echo "$TOKEN"'},
            outputs={"said": "${{ steps.s.outputs.said }}"},
        )},
    })  # fmt: skip
    flow = write(workspace, "flow.yml", {
        "on": "push",
        "jobs": {
            "stage": {"uses": "./.github/workflows/_stage.yml",
                      "with": {"count": 3, "loud": True, "name": "${{ github.ref_name }}"},
                      "secrets": {"TOKEN": "${{ secrets.MINE }}"}},
            "after": job({"env": {"SAID": "${{ needs.stage.outputs.said }}"},
                          "run": 'test "$SAID" = "main 3 yes 6"'}, needs="stage"),
        },
    })  # fmt: skip
    _, jobs = run(workspace, evaluator, flow, secrets={"MINE": "s3cret"})
    assert jobs["stage/say"].result == "success", jobs["log"]
    assert jobs["stage"].outputs == {"said": "main 3 yes 6"}
    assert jobs["after"].result == "success", jobs["log"]
    assert "s3cret" not in jobs["log"] and "***" in jobs["log"]  # secrets are masked
    broken = write(workspace, "broken.yml", {
        "on": "push",
        "jobs": {"stage": {"uses": "./.github/workflows/_stage.yml", "with": {"name": "x"}}},
    })  # fmt: skip
    with pytest.raises(ToolkitError, match="requires the secret TOKEN"):
        run(workspace, evaluator, broken)


def test_actions_are_replaced_by_their_declared_stand_ins_and_local_actions_run(
    workspace: Path, evaluator: Evaluator
) -> None:
    action = workspace / ".github" / "actions" / "greet"
    action.mkdir(parents=True)
    (action / "action.yml").write_text(yaml.safe_dump({
        "name": "greet", "description": "d",
        "inputs": {"who": {"description": "d", "default": "nobody"}},
        "outputs": {"greeting": {"description": "d", "value": "${{ steps.g.outputs.text }}"}},
        "runs": {"using": "composite", "steps": [
            {"id": "g", "shell": "bash", "env": {"WHO": "${{ inputs.who }}"},
             "run": 'echo "text=hello $WHO" >> "$GITHUB_OUTPUT"'},
        ]},
    }))  # fmt: skip
    flow = write(workspace, "flow.yml", {
        "on": "push",
        "jobs": {
            "ok": job(
                {"uses": "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"},
                {"uses": "example/tool@v1", "with": {"what": "hammer"}},
                {"uses": "./.github/actions/greet", "id": "greet", "with": {"who": "fork"}},
                {"env": {"G": "${{ steps.greet.outputs.greeting }}"},
                 "run": 'test "$G" = "hello fork"'},
            ),
            "refused": job({"uses": "example/cloud-login@v2"}),
            "undeclared": job({"uses": "someone/else@v1"}),
        },
    })  # fmt: skip
    the_run, jobs = run(workspace, evaluator, flow)
    assert jobs["ok"].result == "success", jobs["log"]
    assert (workspace / "tool-hammer").read_text() == "got hammer\n"
    assert jobs["refused"].result == "failure"
    assert jobs["undeclared"].result == "failure"
    messages = [a.message for a in the_run.annotations]
    assert "the workspace is the checkout" in messages and "no cloud here" in messages
    assert any("no declared local stand-in" in m for m in messages)


TRAPPED = """
sleep 30 &
child=$!
restore() {
  echo "restored on $1 after $SECONDS s" > "$GITHUB_WORKSPACE/restored"; kill "$child"; exit 130
}
trap 'restore INT' INT
trap 'restore TERM' TERM
wait "$child"
"""
DEAF_TO_SIGINT = """
trap '' INT
trap 'echo "TERM after $SECONDS s" > "$GITHUB_WORKSPACE/termed"; exit 143' TERM
sleep 30 & wait $!
"""


def cancel_flow(workspace: Path, script: str) -> Path:
    return write(workspace, "flow.yml", {
        "on": "push",
        "jobs": {
            "canary": job({"run": script}, {"if": "always()", "run": "echo after"},
                          {"run": "echo skipped"}),
            "next": job({"run": "true"}, needs="canary"),
            "plain": job({"run": "true"}, needs="canary",
                         **{"if": "needs.canary.result == 'cancelled'"}),
            "rollback": job({"run": "true"}, needs=["canary", "next"], **{
                "if": "always() && (needs.canary.result == 'failure' || "
                      "needs.canary.result == 'cancelled')"}),
        },
    })  # fmt: skip


def test_cancelling_sends_sigint_and_the_rollback_job_still_runs(
    workspace: Path, evaluator: Evaluator
) -> None:
    the_run, jobs = run(
        # 4 s: the step has started and set its trap even on a loaded machine (a cancel before a
        # step starts never reaches it, as on GitHub).
        workspace,
        evaluator,
        cancel_flow(workspace, TRAPPED),
        cancel_after={"canary": 4.0},
    )
    assert the_run.cancelled.is_set()
    assert jobs["canary"].result == "cancelled"
    assert [s.outcome for s in jobs["canary"].steps] == ["failure", "success", "skipped"]
    restored = workspace / "restored"
    # The signal the trap saw, not the wall clock (a loaded machine is slow to start a shell).
    assert restored.read_text().startswith("restored on INT"), "the trap ran on SIGTERM"
    assert jobs["next"].result == "cancelled"
    assert jobs["plain"].result == "cancelled"  # success() is false in a cancelled run
    assert jobs["rollback"].result == "success"


def test_a_step_deaf_to_sigint_gets_sigterm_seven_and_a_half_seconds_later(
    workspace: Path, evaluator: Evaluator
) -> None:
    _, jobs = run(
        workspace, evaluator, cancel_flow(workspace, DEAF_TO_SIGINT), cancel_after={"canary": 0.5}
    )
    termed = (workspace / "termed").read_text()
    seconds = int(termed.split()[2])
    assert 7 <= seconds <= 9, termed
    assert jobs["canary"].result == "cancelled" and jobs["rollback"].result == "success"


def test_a_job_whose_condition_holds_in_a_cancelled_run_is_not_cancelled(
    workspace: Path, evaluator: Evaluator
) -> None:
    flow = write(workspace, "flow.yml", {
        "on": "push",
        "jobs": {
            "cleanup": job(
                {"run": "sleep 1.5"},
                {"run": "echo left-out"},
                {"if": "cancelled()", "run": "echo cancelled-seen"},
                **{"if": "always()"},
            ),
            "later": job({"run": "true"}, {"run": "true"}, needs="cleanup", **{"if": "always()"}),
        },
    })  # fmt: skip
    the_run, jobs = run(workspace, evaluator, flow, cancel_after={"cleanup": 0.3})
    assert the_run.cancelled.is_set()
    assert [s.outcome for s in jobs["cleanup"].steps] == ["success", "skipped", "success"]
    assert "SIGINT" not in jobs["log"]
    # A job started after the cancel (always()) runs its steps as usual.
    assert [s.outcome for s in jobs["later"].steps] == ["success", "success"]


def test_a_step_runs_in_its_working_directory_and_a_matrix_is_refused(
    workspace: Path, evaluator: Evaluator
) -> None:
    (workspace / "sub").mkdir()
    flow = write(workspace, "flow.yml", {
        "on": "push",
        "jobs": {"a": job({"working-directory": "sub", "run": 'test "$(basename "$PWD")" = sub'})},
    })  # fmt: skip
    _, jobs = run(workspace, evaluator, flow)
    assert jobs["a"].result == "success", jobs["log"]
    matrix = write(workspace, "matrix.yml", {
        "on": "push",
        "jobs": {"a": job({"run": "true"}, strategy={"matrix": {"x": [1, 2]}})},
    })  # fmt: skip
    with pytest.raises(ToolkitError, match="`strategy` is not supported"):
        run(workspace, evaluator, matrix)
