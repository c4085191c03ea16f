"""Unit tests of app/core/config.py: APP_* variables, provider checks and placeholder secrets."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from app.core.config import Settings

REAL_TOKEN = "a-real-secret-0123456789"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No APP_* variable from the caller's shell leaks into these tests."""
    for name in [n for n in os.environ if n.startswith("APP_")]:
        monkeypatch.delenv(name)


def test_defaults_need_no_environment() -> None:
    settings = Settings()
    assert settings.env == "development"
    assert settings.provider == "embedded"
    assert settings.admin_token is None


def test_app_prefix_sets_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_PORT", "9123")
    monkeypatch.setenv("APP_TRACK", "canary")
    monkeypatch.setenv("APP_RETRIEVE_TOP_K", "5")
    monkeypatch.setenv("APP_ADMIN_TOKEN", REAL_TOKEN)
    settings = Settings()
    assert (settings.port, settings.track, settings.retrieve_top_k) == (9123, "canary", 5)
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == REAL_TOKEN


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    assert Settings().port == 8000


def test_invalid_value_is_refused_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_TRACK", "purple")
    with pytest.raises(ValidationError, match="track"):
        Settings()


def test_secrets_are_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ADMIN_TOKEN", REAL_TOKEN)
    monkeypatch.setenv("APP_PROVIDER_API_KEY", "sk-very-secret-key")
    shown = repr(Settings())
    assert REAL_TOKEN not in shown
    assert "sk-very-secret-key" not in shown


@pytest.mark.parametrize("token", ["changeme", "CHANGEME", "password", "fifteen-chars-x"])
@pytest.mark.parametrize("env", ["production", "staging"])
def test_placeholder_or_short_admin_token_is_refused_outside_development(
    monkeypatch: pytest.MonkeyPatch, env: str, token: str
) -> None:
    monkeypatch.setenv("APP_ENV", env)
    monkeypatch.setenv("APP_ADMIN_TOKEN", token)
    with pytest.raises(ValidationError, match="APP_ADMIN_TOKEN"):
        Settings()


@pytest.mark.parametrize("token", ["changeme", "short"])
@pytest.mark.parametrize("env", ["development", "test"])
def test_placeholder_admin_token_is_accepted_in_development(
    monkeypatch: pytest.MonkeyPatch, env: str, token: str
) -> None:
    monkeypatch.setenv("APP_ENV", env)
    monkeypatch.setenv("APP_ADMIN_TOKEN", token)
    settings = Settings()
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == token


def test_real_admin_token_is_accepted_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("APP_ADMIN_TOKEN", "0123456789abcdef")  # exactly 16 characters
    monkeypatch.setenv("APP_FEEDBACK_SECRET", "fedcba9876543210")
    assert Settings().env == "production"


@pytest.mark.parametrize("secret", [None, "", "changeme", "fifteen-chars-x"])
def test_production_refuses_to_start_without_a_real_feedback_secret(
    monkeypatch: pytest.MonkeyPatch, secret: str | None
) -> None:
    # Without one shared secret, replicas cannot count each other's ratings.
    monkeypatch.setenv("APP_ENV", "production")
    if secret is not None:
        monkeypatch.setenv("APP_FEEDBACK_SECRET", secret)
    with pytest.raises(ValidationError, match="APP_FEEDBACK_SECRET"):
        Settings()


def test_development_needs_no_feedback_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "development")
    assert Settings().feedback_secret is None


@pytest.mark.parametrize("provider", ["openai-compatible", "azure-openai"])
def test_hosted_provider_needs_a_base_url(monkeypatch: pytest.MonkeyPatch, provider: str) -> None:
    monkeypatch.setenv("APP_PROVIDER", provider)
    with pytest.raises(ValidationError, match="APP_PROVIDER_BASE_URL"):
        Settings()


def test_base_url_loses_its_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_PROVIDER", "openai-compatible")
    monkeypatch.setenv("APP_PROVIDER_BASE_URL", "http://127.0.0.1:8001/v1/")
    assert Settings().provider_base_url == "http://127.0.0.1:8001/v1"
