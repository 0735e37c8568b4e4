"""Settings: one object built at the entry point (env vars with the MAAS_ prefix, then flags) and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAAS_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".maas", description="Root of the default store")
    database_url: str = Field("", description="SQLAlchemy URL; default sqlite:///$MAAS_HOME/registry.db")
    artifacts_url: str = Field("", description="fsspec URL of the blob store; default $MAAS_HOME/artifacts")
    user: str = Field("", description="Recorded as created_by; default the OS user")

    host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=0, le=65535)
    grpc_port: int = Field(8001, ge=0, le=65535)
    api_key: str = Field("", description="Bearer token required on every non-health endpoint when set")
    max_upload_bytes: int = Field(2 * 1024**3, gt=0, description="Largest model file accepted by upload")
    max_request_bytes: int = Field(64 * 1024**2, gt=0, description="Largest inference request body")
    max_jobs: int = Field(1, ge=1, le=64, description="Background jobs (train, optimize…) run at once")
    explain_workers: int = Field(1, ge=1, le=64, description="Explanations computed at once (own thread pool)")
    explain_queue: int = Field(4, ge=0, le=1024, description="Explanations waiting beyond those; more get 429")
    explain_max_evals: int = Field(2000, ge=1, description="Largest max_evals one explain request may ask for")
    explain_max_rows: int = Field(16, ge=1, description="Most rows one explain request may carry")
    explain_timeout_s: float = Field(30.0, gt=0, description="Time limit of one explain request (then 504)")

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        self.home = self.home.expanduser()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'registry.db'}"
        if not self.artifacts_url:
            self.artifacts_url = str(self.home / "artifacts")
        if not self.user:
            import getpass

            try:
                self.user = getpass.getuser()
            except Exception:  # no passwd entry in some containers
                self.user = "unknown"
        return self

    def redacted(self) -> dict[str, object]:
        """Settings as printed by `maas config`: secrets masked."""
        out = self.model_dump(mode="json")
        if out.get("api_key"):
            out["api_key"] = "***"
        from sqlalchemy.engine import make_url

        out["database_url"] = make_url(self.database_url).render_as_string(hide_password=True)
        return out
