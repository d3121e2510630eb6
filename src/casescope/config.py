"""Settings: every tunable and every path comes from here.

Values come from ``CASESCOPE_*`` environment variables (e.g. ``CASESCOPE_HOME``,
``CASESCOPE_WORKERS``); the README's "Configuration" table documents each one, and a test
fails when a field here is missing from it.
"""

from __future__ import annotations

import os
import socket
from enum import StrEnum
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from casescope.errors import HomeUnusableError


class ApiDocs(StrEnum):
    """Who may read the OpenAPI description and its pages (`/openapi.json`, `/docs`, `/redoc`)."""

    OFF = "off"
    AUTHENTICATED = "authenticated"
    PUBLIC = "public"


def _default_workers() -> int:
    return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    """casescope settings; see README "Configuration"."""

    model_config = SettingsConfigDict(env_prefix="CASESCOPE_", extra="ignore")

    home: Path = Field(default=Path("~/.casescope"), description="Root of all state.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the metadata DB; default SQLite in home."
    )
    index_url: str | None = Field(
        default=None,
        description="Event index on a ClickHouse server (clickhouse:// or https://), or "
        "chdb:///path (tests); default the embedded chDB in home.",
    )
    workers: int = Field(default_factory=_default_workers, ge=1, description="Worker processes.")
    batch_size: int = Field(default=10_000, ge=100, description="Events per parse batch.")
    sigma_batch_events: int = Field(
        default=25_000, ge=100, description="Events Sigma evaluates at once (larger is faster)."
    )
    group_max_files: int = Field(
        default=64, ge=1, description="Small files a worker claims and evaluates together."
    )
    group_max_bytes: int = Field(
        default=8 * 1024 * 1024, ge=0, description="Evidence bytes of a group of small files."
    )
    host_name: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="The name workers register under (status, System page, /metrics).",
    )
    lease_seconds: float = Field(default=60.0, gt=0, description="Job lease before re-claim.")
    heartbeat_seconds: float = Field(default=10.0, gt=0, description="Lease renewal interval.")
    max_attempts: int = Field(default=3, ge=1, description="Claims of a job before it fails.")
    db_outage_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Longest metadata DB outage (PostgreSQL restart, dropped connection) that "
        "workers, pools and waiting ingests ride out, retrying with backoff, before they stop "
        "with an error.",
    )
    worker_max_tasks: int = Field(default=10_000, ge=1, description="Files before a recycle.")
    worker_max_rss_mb: int = Field(default=450, ge=64, description="RSS that triggers recycle.")
    worker_hard_rss_mb: int = Field(default=1500, ge=64, description="RSS that kills a parse.")
    file_timeout_seconds: float = Field(default=1800.0, gt=0, description="Kill a parse after.")
    max_line_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="NDJSON/CSV line cap."
    )
    load_batch_rows: int = Field(default=500_000, ge=1, description="Rows per index INSERT.")
    load_batch_files: int = Field(default=200, ge=1, description="Files per index INSERT.")
    load_piece_events: int = Field(
        default=100_000,
        ge=1,
        description="Pieces a large file (2 pieces or more) is loaded in while it is parsed.",
    )
    slice_min_mb: float = Field(
        default=64.0,
        gt=0,
        description="An EVTX file of at least twice this many MiB is parsed in slices of at "
        "least this size, at most one per worker, that idle workers take on (jobs/slices.py).",
    )
    # --- web app (`casescope serve`, docs/web.md) ---
    secret_key: str | None = Field(
        default=None, description="Key of the web app's session/token hashes (required)."
    )
    session_hours: float = Field(default=12.0, gt=0, description="Web session lifetime.")
    cookie_secure: bool = Field(default=True, description="Send cookies over HTTPS only.")
    login_attempts_per_minute: int = Field(
        default=5, ge=1, description="Failed logins per user and client before back-off."
    )
    trusted_proxies: str = Field(
        default="",
        description="Proxy addresses/CIDRs (comma-separated) whose X-Forwarded-For is believed.",
    )
    metrics_allow: str = Field(
        default="127.0.0.0/8,::1",
        description="Client CIDRs (comma-separated) that read /metrics and /health without login.",
    )
    allowed_hosts: str = Field(
        default="",
        description="Host header values accepted (comma-separated); default the bind address "
        "and localhost.",
    )
    api_docs: ApiDocs = Field(
        default=ApiDocs.AUTHENTICATED, description="Who may read /openapi.json, /docs, /redoc."
    )
    max_upload_bytes: int = Field(
        default=16 * 2**30, ge=1024, description="Largest upload request body (413 past it)."
    )
    max_request_bytes: int = Field(
        default=32 * 2**20, ge=1024, description="Largest other request body (413 past it)."
    )
    sse_streams_per_user: int = Field(
        default=8, ge=1, description="Event streams one user may hold open at once."
    )
    token_max_days: float = Field(
        default=90.0, gt=0, description="Longest lifetime of an API token (days)."
    )
    rules_max_unpacked_mb: int = Field(
        default=256,
        ge=1,
        description="Largest size the YAML files of an uploaded Sigma rules zip may unpack to.",
    )
    memory_limit_mb: int = Field(
        default=8192, ge=256, description="Memory budget; the System page warns above 80%."
    )
    search_count_limit: int = Field(
        default=10_000, ge=0, description="Matches a web search counts exactly (0: all)."
    )
    facet_sample_events: int = Field(
        default=10_000, ge=0, description="Matches an event-field facet counts (0: all)."
    )
    bulk_mark_max_events: int = Field(
        default=100_000, ge=1, description="Most events one bulk tag/star/hide may change."
    )
    sse_heartbeat_seconds: float = Field(
        default=15.0, gt=0, description="Silence after which an event stream sends a comment."
    )
    # --- zip archives taken in by `casescope ingest` (evidence/archive.py) ---
    max_archive_bytes: int = Field(
        default=64 * 2**30, ge=1, description="Bytes one zip (nested included) may expand to."
    )
    max_archive_members: int = Field(
        default=100_000, ge=1, description="Members one zip (nested included) may hold."
    )
    max_archive_depth: int = Field(default=4, ge=1, description="Zips nested inside zips, at most.")
    max_archive_ratio: int = Field(
        default=200, ge=2, description="Expanded/compressed ratio above which a member is a bomb."
    )
    intake_memory_mb: int = Field(
        default=512,
        ge=64,
        description="Memory the web app's intake process may allocate (uploads, folder imports).",
    )
    # --- memory of the index owner (store/index.py; docs/decisions.md, "Index owner
    # memory: bounded by CASESCOPE_INDEX_MEMORY_MB") ---
    index_memory_mb: int = Field(
        default=480, ge=300, description="Memory budget of the process owning the chDB index."
    )
    # --- bounds of index queries (store/query_bounds.py, docs/query-language.md) ---
    # ClickHouse keeps max_execution_time in microseconds: a bound below one is no bound.
    query_timeout_seconds: float = Field(
        default=30.0,
        ge=1e-6,
        description="Time one search, count, facet or dashboard query may run.",
    )
    long_query_timeout_seconds: float = Field(
        default=600.0, ge=1e-6, description="Time one export chunk or IOC hunt query may run."
    )
    query_max_chars: int = Field(
        default=10_000, ge=1, le=100_000, description="Characters of a search query, at most."
    )
    query_max_terms: int = Field(
        default=200, ge=1, description="Terms (words, field:value, ranges) of a search query."
    )
    index_readers: int = Field(
        default=4, ge=1, description="Queries `casescope serve` runs on its index at once."
    )

    @cached_property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def db_path(self) -> Path:
        return self.home_dir / "casescope.db"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.db_path}"

    @property
    def index_dir(self) -> Path:
        return self.home_dir / "index"

    @property
    def evidence_dir(self) -> Path:
        return self.home_dir / "evidence"

    @property
    def segments_dir(self) -> Path:
        return self.home_dir / "segments"

    @property
    def bundles_dir(self) -> Path:
        """Load bundles: a group's events in one file for the index owner (jobs/group.py)."""
        return self.home_dir / "bundles"

    @property
    def tmp_dir(self) -> Path:
        return self.home_dir / "tmp"

    @property
    def owner_lock_path(self) -> Path:
        return self.home_dir / "index.lock"

    def ensure_dirs(self) -> None:
        """Create the home and its folders; HomeUnusableError, naming the setting, when
        they cannot be (a path through a file, no permission, a read-only disk)."""
        for path in (self.home_dir, self.evidence_dir, self.segments_dir, self.tmp_dir):
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HomeUnusableError(
                    f"the home {self.home_dir} (CASESCOPE_HOME) cannot be used: cannot create "
                    f"{path}: {exc.strerror or exc}"
                ) from None


def get_settings() -> Settings:
    """Fresh settings from the environment (cheap; tests change the environment)."""
    return Settings()
