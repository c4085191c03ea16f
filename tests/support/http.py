"""Assertions on the service's HTTP error contract."""

from __future__ import annotations

import httpx


def assert_error(response: httpx.Response, status: int) -> str:
    """`response` has `status` and a one-sentence string `detail`, and no traceback; returns it."""
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str), detail
    assert detail.endswith("."), detail
    # One sentence: no sentence break before the final full stop.
    assert ". " not in detail.rstrip("."), detail
    return detail
