"""The `APP_*` settings the toolkit passes to a service it starts (the local platform, k8s)."""

from __future__ import annotations

PREFIX = "APP_"

HOST = "APP_HOST"  # listen address
PORT = "APP_PORT"  # listen port
TRACK = "APP_TRACK"  # stable | canary | blue | green: the `track` label
VERSION = "APP_VERSION"  # image tag or git ref: the `app_version` label
GIT_SHA = "APP_GIT_SHA"
REGISTRY_DIR = "APP_REGISTRY_DIR"  # the registry folder the service loads and hot-reloads
REGISTRY_RELOAD_SECONDS = "APP_REGISTRY_RELOAD_SECONDS"
ADMIN_TOKEN = "APP_ADMIN_TOKEN"  # noqa: S105  # nosec B105  # a setting name, not a secret
DRAIN_SECONDS = "APP_DRAIN_SECONDS"  # not ready but serving this long after SIGTERM
SHUTDOWN_GRACE_SECONDS = "APP_SHUTDOWN_GRACE_SECONDS"
# Signs feedback tokens; the same on every instance (a setting name, not a secret).
FEEDBACK_SECRET = "APP_FEEDBACK_SECRET"  # noqa: S105  # nosec B105
# Where feedback and the answer log go (SQLAlchemy URL; SQLite by default).
DATABASE_URL = "APP_DATABASE_URL"
# Whether the service applies pending expand migrations itself (off where a Job runs them).
DATABASE_AUTO_MIGRATE = "APP_DATABASE_AUTO_MIGRATE"

# The settings an instance's identity is made of: the toolkit always sets these itself.
MANAGED = frozenset({HOST, PORT, TRACK})
