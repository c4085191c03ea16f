"""Sticky variant assignment: the same unit id always lands in the same bucket of an experiment.

Contract (shared with the local router and documented in DEPLOYING.md)::

    bucket = int(sha256(f"{salt}:{unit_id}").hexdigest()[:15], 16) % 10000

The canary owns buckets ``[0, percentage * 100)``; everything else goes to production. Raising a
canary from 5% to 20% therefore only adds users to it, and a rollback sends the same users back.
"""

from __future__ import annotations

import hashlib

BUCKETS = 10_000


def bucket(unit_id: str, salt: str) -> int:
    """The bucket, 0..9999, of `unit_id` in the experiment named by `salt`."""
    digest = hashlib.sha256(f"{salt}:{unit_id}".encode()).hexdigest()
    return int(digest[:15], 16) % BUCKETS


def in_canary(unit_id: str, salt: str, percentage: float) -> bool:
    """Whether `unit_id` falls in the first `percentage` percent of buckets."""
    return bucket(unit_id, salt) < round(percentage * BUCKETS / 100)
