"""Every option of every script falls back to a documented `ROLLOUT_<OPTION>` variable."""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from contract.files import REPO_ROOT
from scripts.toolkit.cli import ENV_PREFIX, ToolkitError, env_name

CLIS = sorted(p.stem for p in (REPO_ROOT / "scripts").glob("*.py") if p.stem not in ("__init__",))
DEPLOYING = (REPO_ROOT / "DEPLOYING.md").read_text(encoding="utf-8")


def parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """The parser and every subcommand's, with the words that select it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, (*path, name))


def options(module: Any) -> Iterator[tuple[tuple[str, ...], argparse.Action]]:
    """(command words, option) for every option but --help."""
    for path, parser in parsers(module.build_parser()):
        for action in parser._actions:
            if action.option_strings and not isinstance(action, argparse._HelpAction):
                yield path, action


def long_name(action: argparse.Action) -> str:
    return max(action.option_strings, key=len)


def sample(action: argparse.Action) -> tuple[str, Any]:
    """A value for the option's variable, and what the parser should make of it."""
    if isinstance(action, argparse._StoreTrueAction):
        return "true", not action.default
    if action.choices is not None:
        choice = next(c for c in action.choices if c != action.default)
        value = [choice] if isinstance(action, argparse._AppendAction) else choice
        return str(choice), value
    convert = action.type if callable(action.type) else str
    raw = next(
        r
        for r in ("7", "http://example.test:7", "2026-12-02T10:00:00+00:00")
        if _parses(convert, r)
    )
    if isinstance(action, argparse._AppendAction):
        return f"{raw},{raw}", [convert(raw), convert(raw)]
    return raw, convert(raw)


def _parses(convert: Any, raw: str) -> bool:
    try:
        convert(raw)
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        return False
    return True


@pytest.fixture(autouse=True)
def _no_rollout_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)


@pytest.mark.parametrize("name", CLIS)
def test_every_option_falls_back_to_a_documented_variable(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = importlib.import_module(f"scripts.{name}")
    found = list(options(module))
    assert found, f"{name} has no options"
    for path, action in found:
        variable = env_name(long_name(action))
        assert variable in (action.help or ""), f"{name} {long_name(action)}: help names it"
        assert f"`{variable}`" in DEPLOYING, f"{variable} is not documented in DEPLOYING.md"
        if action.choices is not None and len(list(action.choices)) == 1:
            # One choice only (a single traffic backend): any other value is refused.
            with monkeypatch.context() as patched:
                patched.setenv(variable, "not-a-choice")
                with pytest.raises(ToolkitError, match=variable):
                    module.build_parser()
            continue
        raw, expected = sample(action)
        before = vars(module.build_parser().parse_args(list(path)))[action.dest]
        with monkeypatch.context() as patched:
            patched.setenv(variable, raw)
            after = vars(module.build_parser().parse_args(list(path)))[action.dest]
        assert after == expected != before, f"{name} {' '.join(path)} {long_name(action)}"


def test_a_bad_variable_is_a_usage_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from scripts import monitor_canary, promote  # noqa: PLC0415  # after the env is cleaned

    monkeypatch.setenv("ROLLOUT_TARGET", "database")
    assert promote.main([]) == 2
    assert "ROLLOUT_TARGET must be one of code, prompt" in capsys.readouterr().err
    monkeypatch.delenv("ROLLOUT_TARGET")
    monkeypatch.setenv("ROLLOUT_INTERVAL", "soon")
    assert monitor_canary.main([]) == 2
    assert "--interval" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "-5"], "argument --interval: must be above 0, not -5"),
        (["--prometheus-url", "not-a-url"], "argument --prometheus-url: 'not-a-url' is not an"),
        (["--duration", "0"], "argument --duration: must be above 0"),
    ],
)
def test_bad_monitor_options_are_usage_errors_that_name_the_option(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from scripts import monitor_canary  # noqa: PLC0415

    assert monitor_canary.main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "policy.yaml" not in err


def test_the_platform_folder_has_one_name() -> None:
    """`--platform-dir` wherever a script takes the platform's folder; no `--state-dir`."""
    for name in CLIS:
        module = importlib.import_module(f"scripts.{name}")
        names = {long_name(a) for _, a in options(module)}
        assert "--state-dir" not in names, name
