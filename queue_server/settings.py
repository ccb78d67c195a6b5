"""Settings: one typed object built from `RIGI_*` environment variables at start-up."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "config"


class Settings(BaseSettings):
    """Everything the server reads from its environment; a bad value stops start-up by name."""

    model_config = SettingsConfigDict(env_prefix="RIGI_", extra="ignore", frozen=True)

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path("./data")
    database_url: str | None = None
    bus_url: str = "memory://"
    bus_channel_prefix: str = Field(
        default="rigi:bus:",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="Redis channel prefix; deployments sharing one Redis need their own",
    )
    config: Path = SHIPPED_CONFIG
    secret_key: SecretStr | None = None
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    history_events: int = Field(
        default=100_000, ge=10, description="events kept per branch for replay"
    )
    audit_days: int = Field(
        default=400, ge=1, description="days the audit trail is kept, whatever the volume"
    )
    allowed_origins: tuple[str, ...] = ()
    public_url: str | None = Field(default=None, description="e.g. https://rigi.example.ge")
    remote_tickets: bool = Field(default=True, description="phones may take tickets anonymously")
    issue_rate_device: str = "60/minute"
    issue_rate_address: str = "10/hour"
    login_rate: str = "10/5m"
    log_level: str = "info"
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object a line, with the request id"
    )
    metrics_token: SecretStr | None = Field(
        default=None, min_length=16, description="bearer token a Prometheus scraper sends"
    )
    metrics_allow: tuple[str, ...] = Field(
        default=(), description="addresses or networks that may scrape /metrics without a token"
    )
    metrics_sample_s: float = Field(
        default=10.0, gt=0, le=300, description="between samples of the pool and printers"
    )
    heartbeat_s: float = Field(
        default=15.0, gt=0, le=300, description="between pings; two unanswered drop a client"
    )

    @field_validator("bus_url")
    @classmethod
    def _known_bus(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError("must start with memory:// or redis://")
        return value

    @field_validator("metrics_allow")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # a ValueError names the bad one
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(
            ("sqlite+aiosqlite://", "postgresql+asyncpg://")
        ):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("issue_rate_device", "issue_rate_address", "login_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        from queue_server.access.ratelimit import Limit

        Limit.parse(value)
        return value

    @model_validator(mode="after")
    def _production_needs_secret(self) -> Settings:
        if self.env == "production" and (
            self.secret_key is None or len(self.secret_key.get_secret_value()) < 32
        ):
            raise ValueError(
                "RIGI_SECRET_KEY must be set (32+ characters) when RIGI_ENV=production"
            )
        return self

    @property
    def metrics_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(n, strict=False) for n in self.metrics_allow)

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'rigi.sqlite3').resolve()}"


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; raise SystemExit naming the bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = (
                "RIGI_" + "_".join(str(part) for part in error["loc"]).upper()
                if error["loc"]
                else "settings"
            )
            problems.append(f"{name}: {error['msg']}")
        raise SystemExit("Invalid settings:\n  " + "\n  ".join(problems)) from None
