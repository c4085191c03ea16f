"""Unit tests of contract/assignment.py: the sticky bucket contract and its test vectors."""

from __future__ import annotations

import pytest

from contract.assignment import BUCKETS, bucket, canary_buckets, in_canary

# PUBLISHED TEST VECTORS. These (unit_id, salt, bucket) triples are the assignment contract:
# every other implementation (the local router, a gateway, a client SDK) must reproduce them
# exactly, or users would see a different variant depending on which component routed them.
# bucket = int(sha256(f"{salt}:{unit_id}".encode()).hexdigest()[:15], 16) % 10000
# The numbers were computed once, independently of app/, and pasted here; never regenerate them
# from the code under test.
VECTORS = [
    ("user-1", "rag_answer:v2", 336),
    ("user-2", "rag_answer:v2", 3656),
    ("alice", "rag_answer:v2", 7325),
    ("bob", "checkout-exp", 3617),
    ("", "rag_answer:v2", 1943),
    ("user-42", "rollout", 6772),
    ("session-abc123", "rollout", 555),
    ("42", "rag_answer:v1", 1048),
    ("üser-ß", "rag_answer:v2", 7514),
    ("user-1", "rag_answer:v3", 2828),
]

POPULATION = [f"user-{n}" for n in range(100_000)]


@pytest.mark.parametrize(("unit_id", "salt", "expected"), VECTORS)
def test_published_vectors(unit_id: str, salt: str, expected: int) -> None:
    assert bucket(unit_id, salt) == expected


@pytest.mark.parametrize(("unit_id", "salt", "expected"), VECTORS)
def test_canary_owns_the_lowest_buckets(unit_id: str, salt: str, expected: int) -> None:
    # A percentage p gives the canary buckets [0, p * 100): the boundary is exact.
    assert in_canary(unit_id, salt, (expected + 1) / 100)
    assert not in_canary(unit_id, salt, expected / 100)


def test_assignment_is_sticky() -> None:
    assert [bucket("user-7", "exp") for _ in range(3)] == [bucket("user-7", "exp")] * 3


@pytest.mark.parametrize("percentage", [5, 20, 50, 90])
def test_canary_share_matches_the_percentage(percentage: float) -> None:
    share = sum(in_canary(u, "rag_answer:v2", percentage) for u in POPULATION) / len(POPULATION)
    assert abs(share - percentage / 100) < 0.01


def test_buckets_cover_the_whole_range() -> None:
    buckets = [bucket(u, "rag_answer:v2") for u in POPULATION[:20_000]]
    assert min(buckets) >= 0
    assert max(buckets) < BUCKETS
    # With 20,000 draws over 10 deciles, every decile is used about equally.
    deciles = [sum(b // 1000 == d for b in buckets) for d in range(10)]
    assert all(1800 < count < 2200 for count in deciles)


def test_ramp_only_adds_users() -> None:
    salt = "rag_answer:v2"
    at = {p: {u for u in POPULATION if in_canary(u, salt, p)} for p in (5, 20, 50)}
    assert at[5] <= at[20] <= at[50]
    assert len(at[5]) < len(at[20]) < len(at[50])


def test_rollback_to_zero_empties_the_canary() -> None:
    assert not any(in_canary(u, "rag_answer:v2", 0) for u in POPULATION)


def test_full_rollout_takes_everyone() -> None:
    assert all(in_canary(u, "rag_answer:v2", 100) for u in POPULATION[:10_000])


def test_different_salts_assign_independently() -> None:
    first = {u for u in POPULATION if in_canary(u, "experiment-a", 50)}
    second = {u for u in POPULATION if in_canary(u, "experiment-b", 50)}
    overlap = len(first & second) / len(POPULATION)
    assert abs(overlap - 0.25) < 0.01


@pytest.mark.parametrize(
    ("percentage", "owned"), [(0.005, 0), (0.015, 1), (0.025, 2), (12.345, 1234), (0.29, 29)]
)
def test_a_fractional_percentage_owns_the_floor_of_its_buckets(
    percentage: float, owned: int
) -> None:
    """`[0, percentage × 100)`, floored: round() (half to even) would give 0.015% two buckets."""
    assert canary_buckets(percentage) == owned
