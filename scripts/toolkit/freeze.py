"""Deploy freeze windows (rollout/freeze.yaml): weekly or dated spans in which production
rollouts refuse to start unless a person overrides them with a reason."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contract.files import REPO_ROOT
from scripts.toolkit.cli import ToolkitError

DEFAULT_FREEZE_FILE = REPO_ROOT / "rollout" / "freeze.yaml"
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MINUTES_PER_WEEK = 7 * 24 * 60


def week_minute(text: str) -> int:
    """`Fri 15:00` as minutes since Monday 00:00."""
    day, _, clock = text.strip().partition(" ")
    if day[:3].title() not in DAYS:
        raise ValueError(f"{text!r}: start with a day, one of {', '.join(DAYS)}")
    try:
        moment = datetime.strptime(clock.strip(), "%H:%M")
    except ValueError:
        raise ValueError(f"{text!r}: write the time as HH:MM, e.g. 'Fri 15:00'") from None
    return DAYS.index(day[:3].title()) * 1440 + moment.hour * 60 + moment.minute


class Weekly(BaseModel):
    """Every week from a day and time to another (across the weekend when `to` comes first)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    start: str = Field(alias="from")
    end: str = Field(alias="to")

    @field_validator("start", "end")
    @classmethod
    def _valid(cls, value: str) -> str:
        week_minute(value)
        return value

    def contains(self, moment: datetime) -> bool:
        now = moment.weekday() * 1440 + moment.hour * 60 + moment.minute
        start, end = week_minute(self.start), week_minute(self.end)
        return start <= now < end if start < end else now >= start or now < end

    def ends_after(self, moment: datetime) -> datetime:
        now = moment.weekday() * 1440 + moment.hour * 60 + moment.minute
        ahead = (week_minute(self.end) - now) % MINUTES_PER_WEEK
        return (moment + timedelta(minutes=ahead)).replace(second=0, microsecond=0)


class Window(BaseModel):
    """A named freeze: `weekly`, or dated `from`/`to` (local times of the file's time zone)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str
    weekly: Weekly | None = None
    start: datetime | None = Field(default=None, alias="from")
    end: datetime | None = Field(default=None, alias="to")

    @model_validator(mode="after")
    def _one_kind(self) -> Window:
        dated = self.start is not None or self.end is not None
        if (self.weekly is None) == (not dated):
            raise ValueError("give either `weekly: {from, to}` or dated `from` and `to`")
        if dated and (self.start is None or self.end is None or self.end <= self.start):
            raise ValueError("a dated window needs `from` before `to`")
        return self


class FreezeFile(BaseModel):
    """rollout/freeze.yaml."""

    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1]
    timezone: str = "UTC"
    environments: list[str] = ["production"]
    windows: list[Window] = []

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
        return value


def load_freeze(path: Path) -> FreezeFile:
    """The freeze file, validated; a bad one is a ToolkitError naming the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return FreezeFile.model_validate(data)
    except OSError as exc:
        raise ToolkitError(f"cannot read the freeze file {path}: {exc.strerror}.") from exc
    except yaml.YAMLError as exc:
        raise ToolkitError(f"{path} is not YAML: {exc}.") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise ToolkitError(f"{path}: {where}: {first['msg']}.") from exc


def active_window(
    freeze: FreezeFile, environment: str, at: datetime
) -> tuple[Window, datetime] | None:
    """The window `environment` is frozen by at `at`, with when it ends; None when open."""
    if environment not in freeze.environments:
        return None
    zone = ZoneInfo(freeze.timezone)
    local = at.astimezone(zone)
    for window in freeze.windows:
        if window.weekly is not None and window.weekly.contains(local):
            return window, window.weekly.ends_after(local)
        if window.start is not None and window.end is not None:
            start, end = window.start.replace(tzinfo=zone), window.end.replace(tzinfo=zone)
            if start <= local < end:
                return window, end
    return None
