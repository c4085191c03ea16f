"""Deploy freeze windows: weekly (across the weekend) and dated windows refuse production, an
override with a reason is let through and recorded, a bad file is named field by field."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from scripts import check_freeze

FREEZE = """\
schema_version: 1
timezone: Europe/Berlin
environments: [production]
windows:
  - name: weekend
    weekly: {from: "Fri 15:00", to: "Mon 07:00"}
  - name: year-end
    from: "2026-12-23 00:00"
    to: "2027-01-05 00:00"
"""


@pytest.fixture
def freeze_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ROLLOUT_FREEZE_FILE", "ROLLOUT_ENVIRONMENT", "ROLLOUT_AT", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "freeze.yaml"
    path.write_text(FREEZE, encoding="utf-8")
    return path


def check(path: Path, at: str, *extra: str) -> tuple[int, dict[str, object]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = check_freeze.main(
            ["--freeze-file", str(path), "--at", at, "--output", "json", *extra]
        )
    return code, json.loads(out.getvalue())


@pytest.mark.parametrize(
    ("at", "frozen_by"),
    [
        ("2026-12-02T10:00:00+01:00", None),  # a Wednesday
        ("2026-12-04T14:59:00+01:00", None),  # Friday, just before
        ("2026-12-04T15:00:00+01:00", "weekend"),
        ("2026-12-05T12:00:00+00:00", "weekend"),  # Saturday, given in UTC
        ("2026-12-07T06:59:00+01:00", "weekend"),  # Monday morning
        ("2026-12-07T07:00:00+01:00", None),
        ("2026-12-29T10:00:00+01:00", "year-end"),  # a Tuesday inside the dated window
        ("2027-01-05T00:00:00+01:00", None),  # `to` is exclusive (a Tuesday)
    ],
)
def test_windows_are_read_in_the_files_time_zone(
    freeze_file: Path, at: str, frozen_by: str | None
) -> None:
    code, envelope = check(freeze_file, at)
    assert code == (1 if frozen_by else 0)
    assert envelope["data"]["window"] == frozen_by  # type: ignore[index]


def test_an_override_needs_a_reason_and_is_recorded(
    freeze_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, envelope = check(freeze_file, "2026-12-05T12:00:00+00:00", "--override-reason", " ")
    assert code == 1 and envelope["status"] == "frozen"
    code, envelope = check(
        freeze_file, "2026-12-05T12:00:00+00:00", "--override-reason", "hotfix for the outage"
    )
    assert code == 0 and envelope["status"] == "overridden"
    assert "**Override reason:** hotfix for the outage" in summary.read_text()
    assert "until Mon 2026-12-07 07:00 CET" in summary.read_text()


def test_other_environments_are_not_frozen(freeze_file: Path) -> None:
    code, _ = check(freeze_file, "2026-12-05T12:00:00+00:00", "--environment", "staging")
    assert code == 0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("schema_version: 1\nwindows:\n  - {name: x, weekly: {from: Fry 15:00, to: Mon 07:00}}\n",
         "windows.0.weekly.from"),
        ("schema_version: 1\ntimezone: Mars/Olympus\n", "not an IANA time zone"),
        ("schema_version: 1\nwindows:\n"
         "  - {name: x, from: '2026-12-24 00:00', to: '2026-12-20 00:00'}\n", "`from` before `to`"),
        ("schema_version: 1\nwindows:\n  - {name: x}\n", "either `weekly"),
    ],
)  # fmt: skip
def test_a_bad_file_is_a_usage_error_naming_the_field(
    tmp_path: Path, text: str, says: str, freeze_file: Path
) -> None:
    freeze_file.write_text(text, encoding="utf-8")
    code, envelope = check(freeze_file, "2026-12-02T10:00:00+00:00")
    assert code == 2
    assert says in envelope["errors"][0]  # type: ignore[index]


def test_the_shipped_file_is_valid() -> None:
    code = check_freeze.main(["--at", "2026-12-02T10:00:00+00:00"])
    assert code == 0
