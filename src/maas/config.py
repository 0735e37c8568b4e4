"""Settings: one object built at the entry point (env vars with the MAAS_ prefix, then flags) and passed down."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The one default largest batch: what an import records and the server uses when a version says nothing, and
# the batch size evaluate measures latency at.
DEFAULT_MAX_BATCH_SIZE = 64


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAAS_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".maas", description="Root of the default store")
    database_url: str = Field("", description="SQLAlchemy URL; default sqlite:///$MAAS_HOME/registry.db")
    artifacts_url: str = Field("", description="fsspec URL of the blob store; default $MAAS_HOME/artifacts")
    user: str = Field("", description="Recorded as created_by; default the OS user")
    master_key_file: Path | None = Field(
        None, description="Key ring that encrypts the artifacts; default $MAAS_HOME/keys/master.key"
    )
    master_key: str = Field("", description="The master key itself (base64), instead of a key file")

    host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=0, le=65535)
    grpc_port: int = Field(8001, ge=0, le=65535)
    api_key: str = Field("", description="Bearer token required on every non-health endpoint when set")
    tls_cert: Path | None = Field(None, description="PEM certificate (chain): serve HTTPS and gRPC over TLS")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert")
    tls_client_ca: Path | None = Field(None, description="PEM CA bundle: clients must present a certificate "
                                                         "it signed (mTLS)")
    max_upload_bytes: int = Field(2 * 1024**3, gt=0, description="Largest model file accepted by upload")
    upload_expiry_s: float = Field(
        24 * 3600.0, gt=0, description="A resumable upload untouched this long expires; `maas gc` removes it"
    )
    max_request_bytes: int = Field(64 * 1024**2, gt=0, description="Largest inference request body")
    max_control_body_bytes: int = Field(
        1024**2, gt=0, description="Largest JSON body of a control-API request (PATCH models, PUT aliases, jobs…)"
    )
    allow_remote_trust: bool = Field(
        False, description="Let an admin-key caller import code-running formats (pickles) with trust=true"
    )
    max_header_bytes: int = Field(64 * 1024, ge=1024, description="Largest request head (line + headers); 431 past it")
    max_headers: int = Field(100, ge=8, description="Most request header fields; 431 past it")
    max_http_in_flight: int = Field(
        8192, ge=1, description="HTTP requests in flight at once; past it maas answers 429 at once"
    )
    http_backlog: int = Field(
        8192, ge=1, le=65535, description="Connections waiting to be accepted (listen backlog; the kernel caps it "
        "at net.core.somaxconn)"
    )
    max_queue_size: int = Field(1024, ge=1, description="Requests queued per loaded version; 429 past it")
    max_queue_wait_ms: float = Field(
        500.0, gt=0, le=3_600_000, description="A request expected to wait longer in a queue is refused at once (429)"
    )
    max_grpc_in_flight: int = Field(8192, ge=1, description="gRPC calls in flight at once; RESOURCE_EXHAUSTED past it")
    max_jobs: int = Field(1, ge=1, le=64, description="Background jobs (train, optimize…) run at once")
    prediction_log_url: str = Field("", description="fsspec URL of the prediction logs; default $MAAS_HOME/predictions")
    prediction_log_retention_hours: float = Field(24 * 7, gt=0, description="Older prediction logs are deleted")
    prediction_log_queue: int = Field(10_000, ge=1, description="Sampled requests queued for the log writer at most")
    drift_refresh_s: float = Field(300.0, gt=0, description="How often the drift gauges in /metrics are recomputed")
    drift_window: str = Field("1h", description="The logged window the drift gauges judge (e.g. 30m, 1h, 1d)")
    tracing: bool = Field(False, description="OpenTelemetry spans over OTLP (also on with the OTEL_* variables)")
    explain_workers: int = Field(1, ge=1, le=64, description="Explanations computed at once (own thread pool)")
    explain_queue: int = Field(4, ge=0, le=1024, description="Explanations waiting beyond those; more get 429")
    explain_max_evals: int = Field(2000, ge=1, description="Largest max_evals one explain request may ask for")
    explain_max_rows: int = Field(16, ge=1, description="Most rows one explain request may carry")
    explain_timeout_s: float = Field(30.0, gt=0, description="Time limit of one explain request (then 504)")

    # Serving: how `maas serve` runs models (the per-model batching lives in each version's config and --set).
    inference_threads: int = Field(
        default_factory=lambda: max(1, os.cpu_count() or 1), ge=1, le=1024,
        description="Threads running model code; keep threads x intra-op threads <= cores")
    request_timeout_s: float = Field(60.0, gt=0, description="Default deadline of one inference request")
    poll_interval_s: float = Field(0.5, gt=0, description="How often the server looks for new versions/aliases")
    use_cuda: bool = Field(False, description="Run models with onnxruntime's CUDA provider")
    default_max_batch_size: int = Field(
        DEFAULT_MAX_BATCH_SIZE, ge=0, description="Largest batch for versions that declare none")
    ray_ingress_cpus: float = Field(
        1.0, ge=0, le=1024, description="Ray logical CPUs the ingress replica reserves (maas serve --ray)")

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        self.home = self.home.expanduser()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'registry.db'}"
        if not self.artifacts_url:
            self.artifacts_url = str(self.home / "artifacts")
        if self.master_key_file is None and not self.master_key:
            self.master_key_file = self.home / "keys" / "master.key"  # beside, never inside, the artifacts
        if not self.prediction_log_url:
            self.prediction_log_url = str(self.home / "predictions")
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
        if out.get("master_key"):
            out["master_key"] = "***"
        from sqlalchemy.engine import make_url

        out["database_url"] = make_url(self.database_url).render_as_string(hide_password=True)
        return out
