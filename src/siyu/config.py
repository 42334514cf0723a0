"""Settings: where data lives, which engines to use, the business time zone and thresholds."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "siyu-development-secret-change-me"  # noqa: S105 - refused outside development


class Settings(BaseSettings):
    """Every knob siyu has; read from SIYU_* environment variables or passed in by tests."""

    model_config = SettingsConfigDict(env_prefix="SIYU_", env_nested_delimiter="__", extra="ignore")

    environment: str = Field(default="development", description="development | test | production")
    data_dir: Path = Path("siyu-data")
    database_url: str | None = None
    warehouse_url: str | None = None
    timezone: str = "Asia/Shanghai"
    secret_key: str = DEV_SECRET
    identity_max_member_nos_per_value: int = 20
    import_batch_size: int = 50_000
    session_max_age_seconds: int = 8 * 3600
    api_auth: bool | None = None  # API keys required; unset: everywhere but environment=test

    wecom_corp_id: str | None = None
    wecom_token: str | None = None
    wecom_aes_key: str | None = None
    wecom_api_base: str = "https://qyapi.weixin.qq.com"

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        if self.environment == "production" and self.secret_key == DEV_SECRET:
            raise ValueError("SIYU_SECRET_KEY must be set to a real secret in production")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'siyu.db'}"

    @property
    def resolved_warehouse_url(self) -> str:
        """The DuckDB warehouse (the sync target): always present, even beside ClickHouse."""
        if self.warehouse_url and self.warehouse_url.startswith("duckdb://"):
            return self.warehouse_url
        return f"duckdb:///{self.data_dir / 'warehouse.duckdb'}"

    @property
    def clickhouse_url(self) -> str | None:
        """`clickhouse://…` or `chdb://PATH` when segments run on ClickHouse (ADR 0003)."""
        url = self.warehouse_url
        return url if url and url.startswith(("clickhouse://", "chdb://")) else None

    @property
    def uses_embedded_storage(self) -> bool:
        return self.database_url is None or self.resolved_database_url.startswith("sqlite")
