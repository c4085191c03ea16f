"""Builds the provider named by the settings."""

from __future__ import annotations

from app.core.config import Settings
from app.providers.base import Provider
from app.providers.embedded import EmbeddedProvider
from app.providers.openai_compatible import OpenAICompatibleProvider


async def build_provider(settings: Settings) -> Provider:
    """A ready provider: for `embedded`, its model server has been started and answers."""
    if settings.provider == "embedded":
        embedded = EmbeddedProvider(
            port=settings.embedded_model_port,
            timeout=settings.provider_timeout_seconds,
            max_retries=settings.provider_max_retries,
        )
        try:
            await embedded.wait_ready()
        except RuntimeError:
            await embedded.aclose()
            raise
        return embedded
    return OpenAICompatibleProvider(
        base_url=settings.provider_base_url,
        api_key=settings.provider_api_key.get_secret_value(),
        timeout=settings.provider_timeout_seconds,
        max_retries=settings.provider_max_retries,
        azure_api_version=settings.azure_api_version
        if settings.provider == "azure-openai"
        else None,
        name=settings.provider,
    )
