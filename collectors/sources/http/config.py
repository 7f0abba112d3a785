"""The HTTP push source's config (README.md, sample.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from collectors.sources.base import SourceConfig
from collectors.sources.push import check_secret_source

MIB = 1024 * 1024
#: Bearer tokens shorter than this are refused (characters).
MIN_TOKEN_CHARS = 16


class TokenConfig(BaseModel):
    """One bearer token: who holds it (``site``, named in logs instead of the token) and, optionally,
    the units it may push for. The token is given inline or as the first line of ``token_file``."""

    model_config = ConfigDict(extra="forbid")

    site: str = Field(min_length=1, max_length=64)
    token: SecretStr | None = Field(None, min_length=MIN_TOKEN_CHARS)
    token_file: Path | None = None
    units: list[str] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_token(self) -> TokenConfig:
        check_secret_source(self.token, self.token_file, "token")
        if self.token is None and self.token_file is None:
            raise ValueError("give token or token_file")
        return self


class Config(SourceConfig):
    """``POST {path}`` on ``host:port``; bodies over ``max_body_bytes`` get 413, bodies slower than
    ``body_timeout_s`` seconds get 408, a connection that has not sent a whole request head
    ``keepalive_timeout_s`` seconds after it opened or after its last answer is closed, and
    connections beyond ``max_connections`` open at once get 503."""

    type: Literal["http_push"]
    host: str = "0.0.0.0"
    port: int = Field(8480, ge=1, le=65535)
    path: str = Field("/v1/readings", pattern=r"^/[A-Za-z0-9_./-]*$")
    tokens: list[TokenConfig] = Field(min_length=1)
    max_body_bytes: int = Field(MIB, ge=1024, le=64 * MIB)
    body_timeout_s: float = Field(30.0, gt=0, le=600)
    keepalive_timeout_s: float = Field(15.0, gt=0, le=600)
    max_connections: int = Field(256, ge=1, le=65536)

    @model_validator(mode="after")
    def _path_is_not_healthz(self) -> Config:
        if self.path == "/healthz":
            raise ValueError("path /healthz is the health check")
        return self
