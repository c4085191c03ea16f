"""One settings object for the service, read from ``APP_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract import settings as names
from contract.database import normalize_url
from contract.files import REPO_ROOT
from contract.tracks import Track

ProviderKind = Literal["embedded", "openai-compatible", "azure-openai"]

# Values a forker might leave in place; refused outside development so they never reach production.
PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "admin", "password", "token"})


class Settings(BaseSettings):
    """Service settings; every field is ``APP_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix=names.PREFIX, extra="ignore")

    env: Literal["development", "test", "staging", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # Identity: shown in /version and as the `track` and `app_version` label of every metric.
    track: Track = Track.STABLE
    version: str = "dev"
    git_sha: str = "unknown"

    # Prompt/model registry and the bundled knowledge base.
    registry_dir: Path = REPO_ROOT / "registry"
    registry_reload_seconds: float = Field(default=2.0, ge=0)
    # On Kubernetes: follow the registry ConfigMap of this name through the API (a change serves
    # within seconds; a mounted ConfigMap can take a minute). Empty: off (app/registry/).
    registry_configmap: str = ""
    registry_configmap_namespace: str = ""  # empty: the pod's own (its service account's)
    kubernetes_api_url: str = ""  # empty: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
    kubernetes_service_account_dir: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount")
    default_prompt: str = "rag_answer"
    knowledge_dir: Path = Path(__file__).resolve().parents[1] / "knowledge" / "kb"
    retrieve_top_k: int = Field(default=3, ge=1, le=20)

    # Model provider. `embedded` starts the bundled model server as a child process and talks to
    # it over HTTP with the same client code as `openai-compatible`.
    provider: ProviderKind = "embedded"
    provider_base_url: str = ""
    provider_api_key: SecretStr = SecretStr("")
    azure_api_version: str = "2024-10-21"
    provider_timeout_seconds: float = Field(default=10.0, gt=0)
    provider_max_retries: int = Field(default=2, ge=0, le=10)
    embedded_model_port: int = Field(default=0, ge=0, le=65535)

    # Admin: pinning a request to a variant and forcing a registry reload need this token.
    admin_token: SecretStr | None = None

    # Signs the feedback token of every answer so that any instance can count its rating: the
    # same on every instance. Unset in development: a random one per process (app/feedback.py).
    feedback_secret: SecretStr | None = None
    feedback_token_max_age_seconds: float = Field(default=7 * 24 * 3600, gt=0)

    # Limits and lifecycle.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    drain_seconds: float = Field(default=0.0, ge=0)
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    ready_cache_seconds: float = Field(default=5.0, ge=0)
    feedback_window: int = Field(default=100_000, ge=1)

    # Database: feedback and the answer log (app/db/). SQLite by default, nothing to install;
    # PostgreSQL with postgresql://user:password@host:5432/name. Writes go through a bounded
    # queue off the request path; a slow or absent database never fails an answer.
    database_url: str = f"sqlite:///{REPO_ROOT / '.local' / 'service.db'}"
    # Apply pending expand revisions on the first connection (off on Kubernetes: a Job does).
    database_auto_migrate: bool = True
    database_queue_rows: int = Field(default=10_000, ge=1)
    # On shutdown, how long queued rows may take to be written before they are dropped.
    database_flush_seconds: float = Field(default=5.0, ge=0)
    # The answer log keeps no question text unless this is on.
    database_log_questions: bool = False

    # Fault injection to simulate a bad release (off by default).
    fault_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    fault_latency_ms: int = Field(default=0, ge=0, le=60_000)

    @field_validator("provider_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        # A plain check, so that SQLAlchemy stays off start-up (app/db/writer.py imports it).
        scheme, _, rest = normalize_url(value).partition("://")
        if scheme not in ("sqlite", "postgresql+psycopg") or not rest:
            raise ValueError(
                "APP_DATABASE_URL must be a sqlite:///path or postgresql://user@host/name URL."
            )
        return normalize_url(value)

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        if self.provider in ("openai-compatible", "azure-openai") and not self.provider_base_url:
            raise ValueError(
                f"APP_PROVIDER_BASE_URL is required when APP_PROVIDER is {self.provider!r}."
            )
        if self.env not in ("development", "test"):
            _check_secret(names.ADMIN_TOKEN, self.admin_token, required=False)
            _check_secret(names.FEEDBACK_SECRET, self.feedback_secret, required=True)
        return self


def _check_secret(name: str, value: SecretStr | None, *, required: bool) -> None:
    """Refuse a placeholder or short secret (and a missing one when `required`)."""
    secret = value.get_secret_value() if value else ""
    if required and not secret:
        raise ValueError(f"{name} is required outside development; set a secret of 16+ characters.")
    if secret and (secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 16):
        raise ValueError(
            f"{name} is a placeholder or shorter than 16 characters; "
            "set a real secret outside development."
        )


@lru_cache
def get_settings() -> Settings:
    """Settings of this process, read once."""
    return Settings()
