"""The router's routing table: backends and weights per track, validated, immutable, sticky.

A request's unit (its user, else its session, else a random id) falls in a bucket by the
contract of `contract/assignment.py` with the salt `router`. Tracks own consecutive bucket
ranges in the order canary, green, blue, stable, so the canary always owns buckets from 0:
raising it from 5% to 20% only adds users, and lowering it sends the same users back.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from contract.assignment import BUCKETS, bucket
from contract.tracks import Track

SALT = "router"
# Bucket order: the canary starts at 0.
TRACKS = (Track.CANARY.value, Track.GREEN.value, Track.BLUE.value, Track.STABLE.value)


class RoutingError(ValueError):
    """A routing table that must not be served; the message is one sentence for the caller."""


@dataclass(frozen=True)
class RoutingTable:
    """Where each track's traffic goes; build one with `RoutingTable.build` (validated)."""

    backends: Mapping[str, str]
    weights: Mapping[str, float]
    revision: int = 0
    ranges: tuple[tuple[int, str], ...] = field(default=(), repr=False, compare=False)
    per_request: bool = False  # each request by chance (policy `code_assignment: request`)

    @classmethod
    def build(
        cls, backends: Mapping[str, str], weights: Mapping[str, float], revision: int = 0
    ) -> RoutingTable:
        """A validated table; raises RoutingError naming the first problem."""
        for track in [*backends, *weights]:
            if track not in TRACKS:
                raise RoutingError(f"Unknown track '{track}'; tracks are {', '.join(TRACKS)}.")
        for track, url in backends.items():
            parts = urlsplit(url) if isinstance(url, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
                raise RoutingError(f"Backend of track '{track}' must be an http(s) URL.")
        for track, weight in weights.items():
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise RoutingError(f"Weight of track '{track}' must be a number.")
            if not math.isfinite(weight) or not 0 <= weight <= 100:
                raise RoutingError(f"Weight of track '{track}' must be between 0 and 100.")
            if track not in backends:
                raise RoutingError(f"Track '{track}' has a weight but no backend.")
        if backends and not math.isclose(sum(weights.values()), 100, abs_tol=1e-6):
            raise RoutingError(f"Weights must add up to 100, not {sum(weights.values()):g}.")
        clean_weights = {t: float(weights.get(t, 0.0)) for t in TRACKS if t in backends}
        return cls(
            backends={t: str(backends[t]).rstrip("/") for t in TRACKS if t in backends},
            weights=clean_weights,
            revision=revision,
            ranges=_ranges(clean_weights),
        )

    @classmethod
    def empty(cls) -> RoutingTable:
        """No backend: every request is refused until a table is set."""
        return cls(backends={}, weights={})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutingTable:
        """Parse `{"backends": {...}, "weights": {...}, "revision": n}` (as GET /-/routes and
        the state file hold it); raises RoutingError when a part is missing or malformed."""
        backends, weights = data.get("backends"), data.get("weights")
        if not isinstance(backends, dict) or not isinstance(weights, dict):
            raise RoutingError("The body needs 'backends' and 'weights' objects.")
        revision = data.get("revision", 0)
        table = cls.build(backends, weights, revision if isinstance(revision, int) else 0)
        return replace(table, per_request=data.get("per_request") is True)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as GET /-/routes returns and the state file stores it."""
        return {
            "backends": dict(self.backends),
            "weights": dict(self.weights),
            "revision": self.revision,
            "per_request": self.per_request,
        }

    def choose(self, unit_id: str) -> str | None:
        """The track that serves `unit_id` (None when no track has weight)."""
        b = bucket(secrets.token_hex(8) if self.per_request else unit_id, SALT)
        for upper, track in self.ranges:
            if b < upper:
                return track
        return None

    def fallback_for(self, track: str) -> str | None:
        """Where a request goes when `track`'s backend refuses connections: stable for the
        canary, the other color for blue and green; nothing for stable itself (a canary at
        low weight is no stand-in for it)."""
        fallbacks: dict[str, str] = {
            Track.CANARY: Track.STABLE,
            Track.BLUE: Track.GREEN,
            Track.GREEN: Track.BLUE,
        }
        fallback = fallbacks.get(track)
        return fallback if fallback in self.backends else None

    def changed(
        self,
        *,
        backends: Mapping[str, str] | None = None,
        weights: Mapping[str, float] | None = None,
        per_request: bool | None = None,
    ) -> RoutingTable:
        """A validated copy with new backends, weights and/or assignment (same revision: the
        router assigns the next one when it accepts the table)."""
        table = RoutingTable.build(
            self.backends if backends is None else backends,
            self.weights if weights is None else weights,
            self.revision,
        )
        return replace(table, per_request=self.per_request if per_request is None else per_request)


def _ranges(weights: Mapping[str, float]) -> tuple[tuple[int, str], ...]:
    # Cumulative upper bounds, rounded like `in_canary`: the canary's first bound is exactly
    # round(percent * BUCKETS / 100). The last track with weight takes the rounding rest.
    ranges: list[tuple[int, str]] = []
    total = 0.0
    for track in TRACKS:
        weight = weights.get(track, 0.0)
        if weight <= 0:
            continue
        total += weight
        ranges.append((round(total * BUCKETS / 100), track))
    if ranges:
        ranges[-1] = (BUCKETS, ranges[-1][1])
    return tuple(ranges)


def unit_id(body: bytes, header_user: str | None) -> str:
    """The unit a request is assigned by: JSON body `user_id`, else `session_id`, else the
    `X-User-ID` header, else a random id (one request, no stickiness)."""
    stripped = body.lstrip()
    if stripped[:1] == b"{":
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key in ("user_id", "session_id"):
                value = data.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()  # as the service reads it (it strips whitespace)
    if header_user:
        return header_user
    return secrets.token_hex(8)
