"""Settings for every process, read from the environment or `.env` (pydantic-settings)."""

from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """One place for configuration; field names are the environment variable names."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # `server`: MySQL/MariaDB and Redis, for production. `embedded`: SQLite and a folder as the queue,
    # no Redis, for trying the service on a machine with only Python (bin/run picks it, see docs/embedded.md).
    profile: Literal["server", "embedded"] = "server"
    embedded_data_dir: Path = ROOT / ".data" / "embedded"

    database_url: str = "mysql+pymysql://root:@127.0.0.1:3306/stock"
    redis_url: str = "redis://127.0.0.1:6379/0"
    broker_url: str | None = Field(default=None, description="Celery broker; defaults to REDIS_URL")

    # Keyed hash of API keys; losing it invalidates every key. bin/run writes one to .env.
    api_key_pepper: SecretStr | None = None

    # Wake-ups for the workers go to SHARD_COUNT queues (stock.0, ...); any worker may consume any
    # of them, and the count may change at any time (shared/ordering.py).
    shard_count: int = Field(default=2, ge=1, le=64)
    queue_prefix: str = Field(default="stock", pattern=r"^[A-Za-z0-9_-]{1,32}$")

    # Per process. 40 is the API's threadpool size (anyio's default), so busy threads never wait
    # for, or open and close, a connection of their own.
    db_pool_size: int = Field(default=40, ge=1)
    db_pool_overflow: int = Field(default=10, ge=0)

    max_batch_lines: int = Field(default=10_000, ge=1)
    # Request bodies: a batch may be large (up to MAX_BATCH_LINES lines, with room for long
    # references); every other body is one command or one catalog entry, a few kilobytes at most.
    max_batch_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # What the API's HTTP server takes before any of the app runs (api/http_limits.py): a request's
    # line and headers in bytes and in number, how long they may take to arrive, and how many
    # connections a process serves at once (past that, 503).
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    max_headers: int = Field(default=100, ge=10)
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=4096, ge=16)
    # 0: /metrics on the API's own port. Otherwise only there, on a port of its own, so that the
    # API's public port never shows it (docker-compose.yml publishes the one, not the other).
    api_metrics_port: int = Field(default=0, ge=0, le=65535)
    job_status_ttl_seconds: int = Field(default=24 * 3600, ge=60)

    # Backpressure: POSTs of work get 503 once this many jobs wait; each key gets a token bucket.
    max_queued_jobs: int = Field(default=10_000, ge=1)
    overload_retry_after_seconds: int = Field(default=5, ge=1)
    rate_limit_per_second: float = Field(default=500.0, ge=0, description="0 turns the limit off")
    rate_limit_burst: int = Field(default=1000, ge=1)
    # Keys that are not valid, per client address and API process: a token bucket (0 turns it off).
    invalid_key_rate_per_second: float = Field(default=1.0, ge=0)
    invalid_key_burst: int = Field(default=20, ge=1)
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=24 * 3600)
    max_wait_seconds: int = Field(default=30, ge=0, le=30)
    # Requests waiting for jobs (Prefer: wait) per API process, and per API key in a process:
    # past these a request is refused (503, 429) before anything is queued.
    max_waiting_requests: int = Field(default=10_000, ge=1)
    max_waiting_requests_per_key: int = Field(default=2_000, ge=1)
    # While submissions come in groups, the job writer lets each group gather this long before it
    # commits it: fewer, larger commits and messages (api/accept/grouped.py). 0 turns it off.
    accept_group_wait_seconds: float = Field(default=0.001, ge=0, le=0.05)

    # Worker: a transaction applies up to this many waiting jobs of the slots it holds, and stops
    # adding batch jobs once they come to about this many lines (a larger batch still goes alone).
    apply_batch_size: int = Field(default=200, ge=1, le=5000)
    apply_batch_lines: int = Field(default=20_000, ge=1)

    # Worker: how long a row lock may be waited for before retrying, and how often to retry.
    lock_wait_timeout_seconds: int = Field(default=5, ge=1)
    max_transaction_retries: int = Field(default=8, ge=1)
    max_job_attempts: int = Field(default=5, ge=1)
    # The database ends a worker's transaction that sat idle this long (a worker stopped or cut
    # off while holding slots), so the slots pass to another worker (shared/drain.py). 0: never.
    db_idle_transaction_timeout_seconds: int = Field(default=5, ge=0)
    # Every SWEEP_INTERVAL_SECONDS each worker applies the jobs waiting longer than
    # SWEEP_AFTER_SECONDS that no worker holds: a lost message, a dead or stuck worker's share.
    sweep_interval_seconds: float = Field(default=1.0, gt=0)
    sweep_after_seconds: float = Field(default=5.0, ge=0)
    # Every EXPIRY_INTERVAL_SECONDS each worker on the shard queues releases the reservations past
    # their time (worker/expiry.py).
    expiry_interval_seconds: float = Field(default=0.5, gt=0)

    # Events are kept this long (the feed's readers may be this far behind).
    event_retention_days: int = Field(default=7, ge=7)
    # Webhooks (shared/webhooks/): receivers on private, loopback or link-local addresses are
    # refused unless allowed; an attempt waits this long for an answer; a failed one is tried again
    # after RETRY_BASE, doubling up to RETRY_MAX (with jitter), until GIVE_UP_AFTER has passed
    # since the event; at most MAX_IN_FLIGHT attempts per subscription at once.
    webhook_allow_private_addresses: bool = False
    webhook_timeout_seconds: float = Field(default=10, gt=0, le=60)
    webhook_retry_base_seconds: float = Field(default=5, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600, gt=0)
    webhook_give_up_after_seconds: float = Field(default=26 * 3600, gt=0)
    webhook_max_in_flight: int = Field(default=10, ge=1)
    # How often the webhook workers turn new events into deliveries and send the due ones.
    webhook_dispatch_interval_seconds: float = Field(default=0.2, gt=0)
    # A worker on the webhooks queue alone runs at this niceness (0-19: the higher, the more it
    # yields the CPU): on a machine it shares with stock workers, deliveries take the CPU the stock
    # commands leave idle and catch up once the load falls (worker/priority.py).
    webhook_worker_niceness: int = Field(default=10, ge=0, le=19)
    # The same for the stock workers: above 0 the API process, which the clients wait on, gets a
    # larger share of a busy machine's CPU than the workers, which then apply bigger batches.
    stock_worker_niceness: int = Field(default=0, ge=0, le=19)

    # Operations: JSON logs at this level; requests slower than this are logged at WARNING; each
    # worker serves /metrics on WORKER_METRICS_PORT (0: no endpoint; bin/run gives each worker its own).
    log_level: str = Field(default="INFO", pattern=r"^(?i:DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    slow_request_seconds: float = Field(default=1.0, gt=0)
    worker_metrics_port: int = Field(default=9200, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"

    # The operator console (api/console/): how long a sign-in lasts (a shift), and whether its
    # cookie is always Secure; otherwise it is Secure when the request came over https, as uvicorn
    # sees it (a proxy's X-Forwarded-Proto counts when the proxy is in FORWARDED_ALLOW_IPS).
    console_session_seconds: int = Field(default=8 * 3600, ge=60, le=7 * 24 * 3600)
    console_secure_cookie: bool = False

    @model_validator(mode="after")
    def _embedded_defaults(self) -> Self:
        """The embedded profile brings its own database and queue and has no Redis; settings that
        would need MySQL or Redis there are refused rather than silently ignored."""
        if self.profile != "embedded":
            return self
        given = self.model_fields_set
        if "database_url" not in given:
            self.database_url = f"sqlite:///{self.embedded_data_dir.resolve() / 'stock.db'}"
        elif not self.database_url.startswith("sqlite:"):
            raise ValueError("the embedded profile runs on SQLite: unset DATABASE_URL, "
                             "or use PROFILE=server")
        if "broker_url" not in given:
            self.broker_url = "filesystem://localhost/"  # kombu warns about a URL without a host
        elif self.broker_url is None or not self.broker_url.startswith("filesystem:"):
            raise ValueError("the embedded profile queues in a folder: unset BROKER_URL, "
                             "or use PROFILE=server")
        if "rate_limit_per_second" not in given:
            self.rate_limit_per_second = 0
        elif self.rate_limit_per_second > 0:
            raise ValueError("a rate limit shared by the API processes needs Redis: "
                             "unset RATE_LIMIT_PER_SECOND, or use PROFILE=server")
        return self

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def uses_redis(self) -> bool:
        """Job status copies, long-poll wake-ups and the rate limit live in Redis (server profile);
        the embedded profile reads the database directly and has no rate limit."""
        return self.profile == "server"

    @property
    def embedded_queue_dir(self) -> Path:
        return self.embedded_data_dir.resolve() / "queue"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
