"""Sticky variant assignment: the same unit id always lands in the same bucket of an experiment.

Contract (shared by the service's prompt canaries and the local router)::

    bucket = int(sha256(f"{salt}:{unit_id}").hexdigest()[:15], 16) % 10000

The canary owns buckets ``[0, floor(percentage * 100))``; everything else goes to production.
Raising a canary from 5% to 20% therefore only adds users to it, and a rollback sends the same
users back.
"""

from __future__ import annotations

import hashlib
import math

BUCKETS = 10_000


def bucket(unit_id: str, salt: str) -> int:
    """The bucket, 0..9999, of `unit_id` in the experiment named by `salt`."""
    digest = hashlib.sha256(f"{salt}:{unit_id}".encode()).hexdigest()
    return int(digest[:15], 16) % BUCKETS


def canary_buckets(percentage: float) -> int:
    """How many buckets (from 0) a canary at `percentage` percent owns: floor, never rounded."""
    # The small epsilon keeps 0.29 * 100 (28.999…) at 29 buckets, as the percentage means.
    return min(BUCKETS, math.floor(percentage * BUCKETS / 100 + 1e-9))


def in_canary(unit_id: str, salt: str, percentage: float) -> bool:
    """Whether `unit_id` falls in the first `percentage` percent of buckets."""
    return bucket(unit_id, salt) < canary_buckets(percentage)
