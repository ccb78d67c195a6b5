"""Settings: one typed object built from `RIGI_*` environment variables at start-up."""

from __future__ import annotations

import ipaddress
import math
from datetime import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "config"
SECRET_MIN_LENGTH = 32
SECRET_MIN_BITS = 80  # zxcvbn scores a random 32-character hex secret about 100


def secret_bits(secret: str) -> float:
    """How many bits an attacker must guess: zxcvbn's estimate (which sees repeats, sequences,
    words and keyboard walks) of the first 72 characters. 32 spaces or `0123…` score under
    20, `secrets.token_hex(16)` about 104, `secrets.token_urlsafe(48)` about 210."""
    from zxcvbn import zxcvbn

    return float(zxcvbn(secret[:72])["guesses_log10"]) * math.log2(10)


class Settings(BaseSettings):
    """Everything the server reads from its environment; a bad value stops start-up by name."""

    model_config = SettingsConfigDict(env_prefix="RIGI_", extra="ignore", frozen=True)

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path("./data")
    database_url: str | None = None
    database_connections: int = Field(
        default=24,
        ge=3,
        le=500,
        description="PostgreSQL connections one process may hold, writes and reads together; "
        "processes × this must stay under the server's max_connections",
    )
    database_wait_s: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="How long a request waits for a PostgreSQL connection before the server "
        "answers 503 `overloaded` (keep it under the proxy's read timeout)",
    )
    bus_url: str = "memory://"
    bus_channel_prefix: str = Field(
        default="rigi:bus:",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="Redis channel prefix; deployments sharing one Redis need their own",
    )
    config: Path = SHIPPED_CONFIG
    secret_key: SecretStr | None = None
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    body_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="a request body must arrive within this"
    )
    max_header_bytes: int = Field(
        default=16 * 1024, ge=4096, description="larger request headers get 431"
    )
    ws_per_address: int = Field(
        default=1_000, ge=1, description="open WebSockets per client address and process"
    )
    timeline_dir: Path | None = Field(
        default=None,
        description="record each event's stages (commit, bus, fan-out), GC pauses and event "
        "loop stalls there, for benchmarks (queue_server/ops/timeline.py); unset: off",
    )
    history_events: int = Field(
        default=100_000, ge=10, description="events kept per branch for replay"
    )
    forecast_runs: int = Field(
        default=32,
        ge=0,
        le=256,
        description="forward runs of the dispatcher per wait forecast (32 is the measured "
        "choice: a refresh of the demo hall with 200 waiting costs ~3 ms of CPU); 0 turns the "
        "forecast off and keeps the single-number estimate",
    )
    fairness_guard: float = Field(
        default=1.5,
        ge=0,
        le=10,
        description="call next: a walk-in that has waited this many times its service's target "
        "goes before every ticket that has not, priority ones but not due bookings (1.5 met every "
        "fairness goal in simulation with the mean wait down: docs/simulation.md); 0: off",
    )
    audit_days: int = Field(
        default=400, ge=1, description="days the audit trail is kept, whatever the volume"
    )
    allowed_origins: tuple[str, ...] = ()
    public_url: str | None = Field(default=None, description="e.g. https://rigi.example.ge")
    remote_tickets: bool = Field(
        default=True,
        description="phones in the hall may take a ticket with the QR code of a lobby screen or "
        "kiosk (the hall pass); off: only kiosks and staff issue tickets",
    )
    hall_pass_minutes: int = Field(
        default=5,
        ge=1,
        le=60,
        description="minutes between rotations of the hall pass that screens and kiosks show; "
        "a pass is honoured for its own period and the next",
    )
    issue_rate_device: str = "60/minute"
    issue_rate_address: str = "10/hour"
    login_rate: str = "10/5m"
    login_rate_address: str = Field(
        default="30/5m", description="failed sign-ins from one address before it must wait"
    )
    trusted_proxies: str = Field(
        default="",
        description="comma-separated addresses/CIDRs of proxies whose X-Forwarded-For is believed",
    )
    api_docs: bool | None = Field(
        default=None, description="serve /docs and /openapi.json (default: not in production)"
    )
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
    # Notifications (docs/notifications.md). URLs are secrets: they may hold a password/token.
    notify_email_url: SecretStr | None = Field(
        default=None, description="smtp://user:pass@host:port?starttls=1&from=… or memory://"
    )
    notify_sms_url: SecretStr | None = Field(
        default=None, description="sms+http://host:port/path?token=… or memory://"
    )
    notify_push_url: SecretStr | None = Field(
        default=None, description="webpush://?subject=mailto:…&key=<VAPID private key>"
    )
    # Push services a browser subscription may point at (the server posts there: no other host).
    notify_push_hosts: tuple[str, ...] = (
        "fcm.googleapis.com",
        "updates.push.services.mozilla.com",
        "*.push.apple.com",
        "*.notify.windows.com",
    )
    notify_inbound_token: SecretStr | None = Field(
        default=None, description="shared secret the SMS gateway signs inbound replies with"
    )
    notify_near_ahead: int = Field(default=3, ge=1, le=100, description="'near' at this many")
    notify_near_minutes: int = Field(
        default=0, ge=0, le=240, description="'near' also at this many minutes' wait; 0: off"
    )
    # Per branch or branch/service, e.g. {"tbilisi": {"minutes": 15}, "tbilisi/id_card":
    # {"ahead": 2, "minutes": 10}}: the most particular one wins, key by key.
    notify_near: dict[str, dict[str, int]] = Field(default_factory=dict)
    notify_late_minutes: int = Field(default=10, ge=1, le=120, description="a 'late' move")
    notify_retention_minutes: int = Field(
        default=60, ge=0, le=60 * 24 * 30, description="contacts kept after the visit ends"
    )
    notify_subscribe_rate: str = "5/hour"
    notify_recipient_rate: str = "6/minute"
    notify_broadcast_rate: str = "3/hour"  # a manager's broadcasts, per branch
    notify_max_attempts: int = Field(default=6, ge=1, le=20)
    notify_reminder_hours: int = Field(
        default=24, ge=0, le=168, description="booking reminder this long before; 0: none"
    )
    notify_lease_s: int = Field(
        default=60, ge=1, le=3600, description="a claim older than this is taken as abandoned"
    )
    # Bookings (docs/bookings.md). Per-branch overrides: RIGI_BOOKING_BRANCHES as JSON, e.g.
    # {"tbilisi": {"walkin_share": 0.6, "early_minutes": 20, "late_minutes": 5,
    #  "priority_confirm": 1}}.
    booking_opens: time = Field(default=time(9, 0), description="when branches open by default")
    booking_closes: time = Field(default=time(18, 0), description="when branches close")
    booking_weekdays: tuple[int, ...] = Field(
        default=(0, 1, 2, 3, 4), description="working days, Monday 0 (JSON list)"
    )
    booking_walkin_share: float = Field(
        default=0.5, ge=0, le=1, description="share of counter time kept for walk-ins"
    )
    booking_early_minutes: int = Field(default=30, ge=0, le=240, description="arrival window")
    booking_late_minutes: int = Field(default=10, ge=0, le=240, description="arrival window")
    # Kiosk priority waits for the attendant: the kiosk issues a normal ticket marked "priority
    # requested", and staff grant it (POST …/tickets/{id}/priority). Per branch: 1 or 0.
    booking_priority_confirm: bool = Field(
        default=False, description="a kiosk's priority ticket needs the attendant's confirmation"
    )
    booking_branches: dict[str, dict[str, float]] = Field(default_factory=dict)
    booking_days_ahead: int = Field(default=14, ge=1, le=120)
    booking_code_minutes: int = Field(default=10, ge=1, le=60)
    booking_code_attempts: int = Field(default=5, ge=1, le=20)
    booking_max_per_person: int = Field(default=3, ge=1, le=100)
    booking_period_days: int = Field(default=10, ge=1, le=365)
    booking_noshow_limit: int = Field(default=2, ge=1, le=100)
    booking_noshow_block_days: int = Field(default=30, ge=1, le=365)
    booking_reschedules: int = Field(default=2, ge=0, le=20)
    booking_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="signs check-in codes; central and its branch nodes share it (default: "
        "the secret key, which a node need not hold)",
    )
    booking_rate_address: str = "10/hour"
    booking_rate_contact: str = "3/hour"
    booking_remote_minutes: int = Field(
        default=60, ge=10, le=240, description="a remote ticket's place is kept this long"
    )

    # Branch-node mode (docs/offline.md): all three set, or none.
    node_central_url: str | None = Field(
        default=None, description="the central server a branch node replicates to"
    )
    node_token: SecretStr | None = Field(default=None, description="the node's token")
    node_branch: str | None = Field(default=None, description="the branch this node serves")
    node_batch_events: int = Field(
        default=5_000, ge=1, le=20_000, description="events a node ships per request"
    )
    node_heartbeat_s: float = Field(
        default=5.0, gt=0, le=300, description="a node speaks to central at least this often"
    )
    node_stale_s: float = Field(
        default=20.0, gt=0, description="central shows a node disconnected after this silence"
    )
    node_max_body_bytes: int = Field(
        default=1024 * 1024, ge=64 * 1024, description="a node's compressed batch at most"
    )

    @field_validator("node_central_url")
    @classmethod
    def _node_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _node_all_or_none(self) -> Settings:
        given = [self.node_central_url, self.node_token, self.node_branch]
        if any(v is not None for v in given) and not all(v is not None for v in given):
            raise ValueError(
                "branch-node mode needs RIGI_NODE_CENTRAL_URL, RIGI_NODE_TOKEN and "
                "RIGI_NODE_BRANCH together"
            )
        return self

    @property
    def is_node(self) -> bool:
        """Whether this server is a branch node (the authority for `node_branch`)."""
        return self.node_branch is not None

    @field_validator("bus_url")
    @classmethod
    def _known_bus(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError("must start with memory:// or redis://")
        return value

    @field_validator("metrics_allow")
    @classmethod
    def _metrics_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
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

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        from queue_server.access.edge import parse_networks

        parse_networks(value)
        return value

    @field_validator("notify_email_url", "notify_sms_url", "notify_push_url")
    @classmethod
    def _known_channel(cls, value: SecretStr | None) -> SecretStr | None:
        schemes = ("memory://", "smtp://", "smtps://", "sms+http://", "sms+https://",
                   "webpush://")  # fmt: skip
        if value is not None and not value.get_secret_value().startswith(schemes):
            raise ValueError("must start with " + ", ".join(schemes))
        return value

    @field_validator(
        "issue_rate_device",
        "issue_rate_address",
        "login_rate",
        "login_rate_address",
        "notify_subscribe_rate",
        "notify_recipient_rate",
        "notify_broadcast_rate",
        "booking_rate_address",
        "booking_rate_contact",
    )
    @classmethod
    def _rate(cls, value: str) -> str:
        from queue_server.access.ratelimit import Limit

        Limit.parse(value)
        return value

    @model_validator(mode="after")
    def _production_needs_secret(self) -> Settings:
        if self.env == "production" and (
            self.secret_key is None
            or len(self.secret_key.get_secret_value()) < SECRET_MIN_LENGTH
            or secret_bits(self.secret_key.get_secret_value()) < SECRET_MIN_BITS
        ):
            raise ValueError(
                f"RIGI_SECRET_KEY must be set to a random secret ({SECRET_MIN_LENGTH}+ "
                f"characters, {SECRET_MIN_BITS}+ bits, e.g. python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(48))') when RIGI_ENV=production"
            )
        return self

    @field_validator("notify_near")
    @classmethod
    def _notify_near(cls, value: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        known = {"ahead", "minutes"}
        for where, rule in value.items():
            if unknown := set(rule) - known:
                raise ValueError(f"{where}: unknown keys {sorted(unknown)}, known {sorted(known)}")
            if any(not 0 <= n <= 240 for n in rule.values()):
                raise ValueError(f"{where}: ahead and minutes must be between 0 and 240")
        return value

    @field_validator("booking_branches")
    @classmethod
    def _booking_branches(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        known = {"walkin_share", "early_minutes", "late_minutes", "priority_confirm"}
        for branch, overrides in value.items():
            if unknown := set(overrides) - known:
                raise ValueError(f"{branch}: unknown keys {sorted(unknown)}, known {sorted(known)}")
            if not 0 <= overrides.get("walkin_share", 0) <= 1:
                raise ValueError(f"{branch}: walkin_share must be between 0 and 1")
        return value

    def booking_setting(self, branch_id: str, name: str) -> float:
        """A booking setting of a branch: its override, else the default for every branch."""
        default: float = getattr(self, f"booking_{name}")
        return self.booking_branches.get(branch_id, {}).get(name, default)

    @property
    def trusted_networks(self) -> tuple[Any, ...]:
        """The trusted proxies as networks (validated at start-up)."""
        from queue_server.access.edge import parse_networks

        return parse_networks(self.trusted_proxies)

    @property
    def dispatch_guard(self) -> float | None:
        """The dispatcher's fairness guard in targets, or None when `fairness_guard` is 0."""
        return self.fairness_guard or None

    @property
    def docs_enabled(self) -> bool:
        """/docs and /openapi.json: on in development, off in production unless asked for."""
        return self.api_docs if self.api_docs is not None else self.env != "production"

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
