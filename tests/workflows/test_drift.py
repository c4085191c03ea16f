"""The workflows and the scripts cannot drift apart: every `python -m scripts.X ...` in a run
block is a script that parses those arguments with its own parser, every ROLLOUT_* variable a
job sets is an option of a script it calls (or read by its bash), and every `./dev X` is a
command of ./dev."""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from contract.files import REPO_ROOT as REPO
from scripts.toolkit.cli import env_name
from tests.workflows.support import ACTIONS, WORKFLOWS, Script, load, scripts

CALL = re.compile(r"(?:\.venv/bin/)?python -m (scripts(?:\.\w+)+)\b(.*)")
OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "<<", "<<<", "(", ")", "2>", "2>&1"}
# Values tried, in order, for an option whose value is a shell variable.
SAMPLES = ("1", "http://127.0.0.1:1", "x", "2026-12-01T10:00:00+00:00")


@dataclass(frozen=True)
class Invocation:
    where: str
    module: str
    argv: list[str]
    variables: frozenset[int]  # positions of argv that were shell variables


def expand(line: str) -> str:
    """Shell forms reduced to words: `${X:+--opt "$X"}` -> `--opt "$X"`, `$(...)` -> `$X`."""
    line = re.sub(r"\s\d?>>?&?\S*", " ", line)  # redirections are the shell's, not arguments
    line = re.sub(r"\$\{\w+:\+([^}]*)\}", r"\1", line)
    line = re.sub(r"\$\(\((?:[^()]|\([^()]*\))*\)\)", "$X", line)
    previous = None
    while previous != line:  # innermost command substitutions first
        previous, line = line, re.sub(r"\$\([^()]*\)", "$X", line)
    return line


def words(text: str) -> list[str]:
    """Shell words and operators; a call quoted inside a larger command (`trap '... down' EXIT`)
    ends at the quote that closes it."""
    while True:
        lexer = shlex.shlex(text, posix=True, punctuation_chars="|&;<>()")
        lexer.whitespace_split = True
        try:
            return list(lexer)
        except ValueError:  # no closing quotation: the call ended before it
            text = text[: max(text.rfind("'"), text.rfind('"'))]


def invocations(script: Script) -> Iterator[Invocation]:
    for line in script.text.replace("\\\n", " ").splitlines():
        match = CALL.search(line)
        if match is None or line.lstrip().startswith("#"):
            continue
        raw = words(expand(match.group(2)))
        argv: list[str] = []
        variables: set[int] = set()
        for token in raw:
            if token in OPERATORS or re.fullmatch(r"[|&;<>()]+", token):
                break
            if "$" in token:
                variables.add(len(argv))
            argv.append(token)
        yield Invocation(script.where, match.group(1), argv, frozenset(variables))


def all_invocations() -> list[Invocation]:
    return [call for script in scripts() for call in invocations(script)]


def parser_for(module: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = importlib.import_module(module).build_parser()
    return parser


def subparser(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The parser that reads `argv`'s options: a subcommand's, when there are subcommands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and argv and argv[0] in action.choices:
            chosen: argparse.ArgumentParser = action.choices[argv[0]]
            return chosen
    return parser


def sample(action: argparse.Action) -> str:
    """A value `action` accepts, standing in for a shell variable."""
    if action.choices:
        return str(next(iter(action.choices)))
    kind: Any = action.type or str
    for value in SAMPLES:
        try:
            kind(value)
        except (TypeError, ValueError, argparse.ArgumentTypeError):
            continue
        return value
    raise AssertionError(f"no sample value suits {action.option_strings}")


def concrete(call: Invocation, parser: argparse.ArgumentParser) -> list[str]:
    """The call's argv with each variable replaced by a value its option accepts."""
    options = subparser(parser, call.argv)._option_string_actions
    argv = list(call.argv)
    for index in sorted(call.variables):
        before = argv[index - 1] if index else ""
        action = options.get(before)
        argv[index] = sample(action) if action is not None else "x"
    return argv


CALLS = all_invocations()


def test_the_workflows_call_the_scripts() -> None:
    called = {call.module for call in CALLS}
    expected = {"scripts.monitor_canary", "scripts.rollback", "scripts.local_platform"}
    assert expected <= called, called
    others = {
        "scripts.deploy",
        "scripts.check_freeze",
        "scripts.load_test",
        "scripts.migration_gate",
    }
    assert others <= called, called


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c.module} {' '.join(c.argv)}"[:80])
def test_each_invocation_parses_with_the_scripts_own_parser(
    call: Invocation, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in __import__("os").environ if n.startswith("ROLLOUT_")]:
        monkeypatch.delenv(name)
    parser = parser_for(call.module)
    argv = concrete(call, parser)
    try:
        parser.parse_args(argv)
    except SystemExit as exc:
        error = capsys.readouterr().err.strip().splitlines()[-1:]
        raise AssertionError(f"{call.where}: {call.module} {argv}: {error}") from exc


def option_names(module: str) -> set[str]:
    parser = parser_for(module)
    parsers = [parser] + [
        p
        for a in parser._actions
        if isinstance(a, argparse._SubParsersAction)
        for p in a.choices.values()
    ]
    return {env_name(o) for p in parsers for o in p._option_string_actions if o.startswith("--")}


def jobs() -> Iterator[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    for path in WORKFLOWS:
        for job_id, job in load(path)["jobs"].items():
            if "steps" in job:
                yield f"{path.name} job {job_id}", job.get("env") or {}, job["steps"]
    for path in ACTIONS:
        yield str(path.relative_to(REPO)), {}, load(path)["runs"]["steps"]


def job_scripts(job_steps: list[dict[str, Any]]) -> Iterator[str]:
    """The run blocks of a job, with those of the local actions it uses (they see its env)."""
    for step in job_steps:
        if "run" in step:
            yield str(step["run"])
        uses = str(step.get("uses", ""))
        if uses.startswith("./"):
            yield from job_scripts(load(REPO / uses / "action.yml")["runs"]["steps"])


@pytest.mark.parametrize("job", list(jobs()), ids=lambda j: j[0])
def test_rollout_variables_a_job_sets_are_options_of_what_it_calls(
    job: tuple[str, dict[str, Any], list[dict[str, Any]]],
) -> None:
    where, env, job_steps = job
    for step in job_steps:
        if "run" not in step:
            continue
        modules = {c.module for c in invocations(Script(where, str(step["run"]), frozenset()))}
        names = {n for n in {*env, *(step.get("env") or {})} if n.startswith("ROLLOUT_")}
        if not modules or not names:
            continue
        known = set().union(*(option_names(m) for m in modules))
        unknown = names - known
        # A job's env serves all its steps: a name one step's scripts do not take must be
        # taken by a script of another step of the job.
        for text in job_scripts(job_steps):
            for call in invocations(Script(where, text, frozenset())):
                unknown -= option_names(call.module)
            unknown -= {n for n in unknown if re.search(rf"\$\{{?{n}\b", text)}  # bash's own
        assert not unknown, f"{where}: {sorted(unknown)} is no option of {sorted(modules)}"


def test_every_dev_command_the_workflows_run_exists() -> None:
    dev = (REPO / "dev").read_text(encoding="utf-8")
    commands = set(re.findall(r"^  ([\w|-]+)\)", dev, re.M))
    known = {name for group in commands for name in group.split("|")}
    used = {m for s in scripts() for m in re.findall(r"\./dev (\w+)", s.text)}
    assert used and used <= known, used - known


def test_the_drift_test_catches_a_wrong_option() -> None:
    call = Invocation("probe", "scripts.monitor_canary", ["--act", "--no-such-option"], frozenset())
    with pytest.raises(SystemExit):
        parser_for(call.module).parse_args(concrete(call, parser_for(call.module)))


def test_variables_are_replaced_by_values_their_options_accept() -> None:
    text = (
        '.venv/bin/python -m scripts.monitor_canary --act --duration "$((M * 60))" \\\n'
        '  --state-file "$RUNNER_TEMP/x.json" &'
    )
    (call,) = invocations(Script("probe", text, frozenset()))
    assert call.argv[:2] == ["--act", "--duration"]
    argv = concrete(call, parser_for(call.module))
    assert argv[2] == "1" and len(argv) == 5
