"""Settings for every process, read from the environment or `.env` (pydantic-settings)."""

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """One place for configuration; field names are the environment variable names."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    database_url: str = "mysql+pymysql://root:@127.0.0.1:3306/stock"
    redis_url: str = "redis://127.0.0.1:6379/0"
    broker_url: str | None = Field(default=None, description="Celery broker; defaults to REDIS_URL")

    # Keyed hash of API keys; losing it invalidates every key. bin/run writes one to .env.
    api_key_pepper: SecretStr | None = None

    # Ordering: commands for one warehouse go to one of SHARD_COUNT queues, each with one consumer.
    shard_count: int = Field(default=2, ge=1, le=64)
    queue_prefix: str = Field(default="stock", pattern=r"^[A-Za-z0-9_-]{1,32}$")

    max_batch_lines: int = Field(default=10_000, ge=1)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    job_status_ttl_seconds: int = Field(default=24 * 3600, ge=60)

    # Backpressure: POSTs of work get 503 once this many jobs wait; each key gets a token bucket.
    max_queued_jobs: int = Field(default=10_000, ge=1)
    overload_retry_after_seconds: int = Field(default=5, ge=1)
    rate_limit_per_second: float = Field(default=500.0, ge=0, description="0 turns the limit off")
    rate_limit_burst: int = Field(default=1000, ge=1)
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=24 * 3600)
    max_wait_seconds: int = Field(default=30, ge=0, le=30)

    # Worker batching: up to this many queued jobs share one transaction, waiting at most the interval.
    apply_batch_size: int = Field(default=200, ge=1, le=5000)
    apply_batch_interval_seconds: float = Field(default=0.02, gt=0, le=5)

    # Worker: how long a row lock may be waited for before retrying, and how often to retry.
    lock_wait_timeout_seconds: int = Field(default=5, ge=1)
    max_transaction_retries: int = Field(default=8, ge=1)
    max_job_attempts: int = Field(default=5, ge=1)

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or self.redis_url


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
