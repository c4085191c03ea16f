"""Schema of the registry files: `prompts/<name>/<version>.yaml` and `models/<model>/<version>/`."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PromptStatus = Literal["production", "canary", "retired"]
ModelStatus = Literal["available", "deprecated", "retired"]

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
PLACEHOLDERS = frozenset({"context", "question"})


class Parameters(BaseModel):
    """Generation parameters; unset ones fall back to the model version's, then the provider's."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    # Provider-specific fields sent as-is in the request body (the embedded model reads `top_k`
    # and `min_score`; hosted APIs reject fields they do not know, so keep this empty for them).
    extra_body: dict[str, Any] = Field(default_factory=dict)

    def merged_over(self, base: Parameters) -> Parameters:
        """These parameters, with the unset ones taken from `base`."""
        data = base.model_dump()
        data.update(
            {k: v for k, v in self.model_dump().items() if v is not None and k != "extra_body"}
        )
        data["extra_body"] = {**base.extra_body, **self.extra_body}
        return Parameters(**data)


class Pricing(BaseModel):
    """Price of the model, used to estimate the cost of each answer."""

    model_config = ConfigDict(extra="forbid")

    input_per_1k_tokens: float = Field(default=0.0, ge=0)
    output_per_1k_tokens: float = Field(default=0.0, ge=0)


class ModelVersion(BaseModel):
    """`models/<name>/<version>/config.yaml`, with `evaluation.json` attached when present."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    version: str = Field(pattern=NAME)
    provider_model: str = Field(min_length=1, max_length=200)
    description: str = ""
    status: ModelStatus = "available"
    parameters: Parameters = Field(default_factory=Parameters)
    pricing: Pricing = Field(default_factory=Pricing)
    evaluation: dict[str, Any] | None = Field(default=None, exclude=True)

    @property
    def ref(self) -> str:
        """`name@version`, as prompts refer to it."""
        return f"{self.name}@{self.version}"


class PromptVersion(BaseModel):
    """`prompts/<name>/<version>.yaml`: a template bound to a model version, with rollout status."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    version: str = Field(pattern=NAME)
    status: PromptStatus
    traffic_percentage: float = Field(default=0.0, ge=0, le=100)
    model: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*@[A-Za-z0-9][A-Za-z0-9._-]*$")
    system: str = Field(default="", max_length=20_000)
    template: str = Field(min_length=1, max_length=20_000)
    parameters: Parameters = Field(default_factory=Parameters)
    experiment: str | None = Field(default=None, pattern=NAME)
    description: str = ""

    @field_validator("template", "system")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        unknown = sorted(set(_PLACEHOLDER.findall(value)) - PLACEHOLDERS)
        if unknown:
            raise ValueError(
                f"unknown placeholder {{{unknown[0]}}}; only {{context}} and {{question}} exist"
            )
        return value

    @model_validator(mode="after")
    def _check(self) -> PromptVersion:
        if "{question}" not in self.template:
            raise ValueError("template must contain {question}")
        if self.status == "canary" and not 0 < self.traffic_percentage <= 100:
            raise ValueError("a canary needs traffic_percentage above 0 and at most 100")
        if self.status == "retired" and self.traffic_percentage:
            raise ValueError("a retired version must have traffic_percentage 0")
        return self

    @property
    def model_name(self) -> str:
        """The model part of `model`."""
        return self.model.split("@", 1)[0]

    @property
    def model_version(self) -> str:
        """The version part of `model`."""
        return self.model.split("@", 1)[1]

    @property
    def salt(self) -> str:
        """Names the experiment for assignment: a new canary version reshuffles users."""
        return self.experiment or f"{self.name}:{self.version}"

    def render(self, *, question: str, context: str) -> list[dict[str, str]]:
        """Chat messages for this version; placeholders are replaced literally, never evaluated."""

        values = {"context": context, "question": question}

        def fill(text: str) -> str:
            # One pass, so a question that contains "{context}" is not expanded again.
            return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)

        messages = [{"role": "system", "content": fill(self.system)}] if self.system else []
        messages.append({"role": "user", "content": fill(self.template)})
        return messages
