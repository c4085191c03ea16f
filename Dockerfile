# The service image: `python -m app` by default; the same image runs the model server
# (`python -m app.model_server`), the local router (`python -m scripts.toolkit.platform.router`)
# and the registry step of the Kubernetes pods (`python -m contract.registry.configmap`).
# Build: docker build --build-arg GIT_SHA="$(git rev-parse HEAD)" -t ai-service:<sha> .

# The base image is an argument so a test can build from a local stand-in (tests/k8s/).
ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv with the runtime lock only (never the dev lock), and the sources -----
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY requirements.runtime.lock ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-compile -r requirements.runtime.lock \
 && /opt/venv/bin/pip uninstall --yes pip setuptools
COPY app/ app/
COPY contract/ contract/
COPY scripts/ scripts/
COPY registry/ registry/
# Compiled here: the final image runs with a read-only root filesystem and writes no .pyc.
RUN python -m compileall -q /app /opt/venv/lib

# --- runtime: the base image, the virtualenv and the sources; no compiler, non-root ----------
FROM ${BASE_IMAGE}
ARG GIT_SHA=unknown
ARG VERSION=${GIT_SHA}
LABEL org.opencontainers.image.title="ai-service" \
      org.opencontainers.image.description="Reference AI service of the AI rollout template" \
      org.opencontainers.image.source="https://github.com/your-org/ai-rollout-template" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.revision="${GIT_SHA}" \
      org.opencontainers.image.version="${VERSION}"
# A numeric UID, so Kubernetes can check runAsNonRoot without a passwd lookup.
RUN groupadd --gid 10001 app \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
# The registry baked in is the default one (docker-compose copies it into a volume the app
# user writes); on Kubernetes APP_REGISTRY_DIR points at the ConfigMap's folder instead.
COPY --from=build --chown=10001:10001 /app/registry /app/registry
# The default SQLite database's folder (APP_DATABASE_URL), the app user's: docker-compose mounts
# one volume there for both tracks; on Kubernetes APP_DATABASE_URL names PostgreSQL instead.
RUN mkdir /app/.local && chown 10001:10001 /app/.local
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    APP_HOST=0.0.0.0 \
    APP_PORT=8000 \
    APP_GIT_SHA=${GIT_SHA} \
    APP_VERSION=${VERSION} \
    MODEL_SERVER_HOST=0.0.0.0
WORKDIR /app
# The only writable paths the processes need are /tmp (a volume: emptyDir, tmpfs) and, for the
# default SQLite database, /app/.local.
VOLUME ["/tmp"]
USER 10001:10001
EXPOSE 8000 8081
CMD ["python", "-m", "app"]
