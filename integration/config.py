"""Settings: one frozen, typed object built from the environment in one place.

Precedence, highest first: keyword arguments, ``LEADLIFT_*`` environment
variables, a ``.env`` file, a YAML file (``LEADLIFT_CONFIG`` or
``./leadlift.yaml``), defaults. Nested keys use a double underscore:
``LEADLIFT_FIELDS__LEAD_SCORE=Acme_Score``. Every invalid key is reported in
one ``ConfigError`` that names the environment variable to fix.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from cryptography.fernet import Fernet
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from integration.errors import ConfigError

ENV_PREFIX = "LEADLIFT_"


class FieldNames(BaseModel):
    """Logical names of the fields leadlift writes; connectors derive CRM names
    (Salesforce ``<name>__c``, HubSpot ``<prefix><name lowercased>``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lead_score: str = "Lead_Score"
    lead_score_bucket: str = "Lead_Score_Bucket"
    uplift_best_action: str = "Uplift_Best_Action"
    uplift_score: str = "Uplift_Score"
    uplift_segment: str = "Uplift_Segment"
    score_reasons: str = "Score_Reasons"
    experiment_arm: str = "Experiment_Arm"
    score_model_version: str = "Score_Model_Version"
    scored_at: str = "Scored_At"

    @field_validator("*")
    @classmethod
    def _api_name(cls, value: str) -> str:
        if not value or not value.replace("_", "").isalnum() or not value[0].isalpha():
            raise ValueError("must start with a letter and hold only letters, digits and '_'")
        if "__" in value or value.endswith("_"):
            raise ValueError("must not contain '__' or end with '_'")
        return value


class Settings(BaseSettings):
    """Everything leadlift reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        frozen=True,
    )

    home: Path = Field(Path(".leadlift"), description="Directory for the embedded store and keys.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in home.")
    broker_url: str | None = Field(None, description="Celery broker; unset runs tasks in-process.")
    result_backend: str | None = None
    secret_key: SecretStr | None = Field(
        None, description="Fernet key encrypting OAuth tokens at rest."
    )

    salesforce_client_id: str | None = None
    salesforce_client_secret: SecretStr | None = None
    salesforce_login_url: str = "https://login.salesforce.com"
    salesforce_redirect_uri: str = "http://localhost:8000/oauth/salesforce/callback"
    salesforce_api_share: float = Field(
        0.5, gt=0, le=1, description="Share of the org's daily API limit leadlift may use."
    )
    salesforce_bulk_threshold: int = Field(
        50_000, ge=1, description="Rows in a sync window above which Bulk API 2.0 is used."
    )
    salesforce_bulk_ingest_threshold: int = Field(
        250_000, ge=1, description="Records in a write-back above which Bulk ingest is used."
    )
    salesforce_field_objects: tuple[str, ...] = ("Lead", "Contact")
    salesforce_extra_fields: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="More fields to sync per object (custom ones too)."
    )
    salesforce_stage_outcomes: dict[str, str] | None = Field(
        None, description="Opportunity StageName → opportunity | closed_won | closed_lost."
    )
    salesforce_layouts: tuple[str, ...] = Field(
        (), description="Page layouts to add leadlift's fields to, e.g. 'Lead-Lead Layout'."
    )
    salesforce_list_view: bool = Field(False, description="Create a 'leadlift top leads' view.")
    api_slow_at: float = Field(0.8, gt=0, le=1, description="Slow down past this budget share.")
    hubspot_client_id: str | None = None
    hubspot_client_secret: SecretStr | None = None
    hubspot_api_base: str = "https://api.hubapi.com"
    hubspot_redirect_uri: str = "http://localhost:8000/oauth/hubspot/callback"
    hubspot_property_prefix: str = "leadlift_"
    hubspot_requests_per_10s: int | None = Field(
        100, ge=1, description="Client-side limit; HubSpot's lowest tier. Unset: no limiter."
    )
    hubspot_search_per_second: int | None = Field(4, ge=1)
    hubspot_extra_properties: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    hubspot_deal_stages: dict[str, str] | None = Field(
        None, description="dealstage id → opportunity | closed_won | closed_lost."
    )
    admin_token: SecretStr | None = Field(None, description="Bearer token for admin endpoints.")
    admin_password: SecretStr | None = Field(
        None, description="Admin UI password (the admin token also logs in)."
    )
    webhook_token: SecretStr | None = Field(
        None, description="Bearer token of the JSON webhook for Salesforce Flow/Apex callouts."
    )
    salesforce_webhook_secret: SecretStr | None = Field(
        None, description="Shared secret in the Outbound Message endpoint URL (?secret=...)."
    )
    webhook_max_age_seconds: int = Field(
        300, ge=1, description="HubSpot v3 signatures older than this are replays."
    )
    webhook_debounce_seconds: float = Field(
        5.0, ge=0, description="Events for one lead within this window share one rescore."
    )
    sync_every_minutes: int = Field(5, ge=1, description="Beat: incremental sync interval.")
    rescore_hour_utc: int = Field(2, ge=0, le=23, description="Beat: nightly rescoring hour.")
    monitor_every_minutes: int = Field(
        60, ge=1, description="Beat: how often model health is checked for recalibration."
    )
    recalibrate_every_days: int = Field(
        90, ge=1, le=92, description="Recalibrate at least this often (quarterly at most)."
    )
    monitor_auc_drop: float = Field(
        0.05, gt=0, lt=1, description="Recalibrate when fresh-outcome AUC falls this far."
    )
    monitor_max_ece: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Recalibrate above this calibration error on fresh outcomes.",
    )
    monitor_min_outcomes: int = Field(
        200, ge=1, description="Fresh labelled leads a health check needs before it judges."
    )
    score_chunk_leads: int = Field(
        100_000, ge=1000, description="Leads per scoring task when a pass is spread over workers."
    )
    sync_lock_seconds: int = Field(
        3600, ge=60, description="Expiry of the lock that keeps one sync per connection."
    )

    fields: FieldNames = FieldNames()
    outcome_window_days: int = Field(21, ge=1, le=365)
    retrain_after_days: int = Field(7, ge=0)
    sync_lookback_seconds: int = Field(300, ge=0)
    sync_lag_seconds: int = Field(5, ge=0)
    writeback_batch_size: int = Field(200, ge=1, le=200)
    writeback_score_step: int = Field(
        3, ge=0, le=100, description="Score points a lead must move before it is pushed again."
    )
    writeback_max_calls: int | None = Field(
        None, ge=1, description="API calls one write-back may spend; the rest waits."
    )
    routing_policy: Path | None = Field(
        None, description="Routing policy YAML; unset uses the packaged default."
    )
    overwrite_manual_owners: bool = Field(
        False, description="Let routing move leads a rep took by hand."
    )
    http_timeout_seconds: float = Field(30.0, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("salesforce_stage_outcomes", "hubspot_deal_stages")
    @classmethod
    def _stage_outcomes(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        allowed = {"opportunity", "closed_won", "closed_lost"}
        bad = sorted(v for v in (value or {}).values() if v not in allowed)
        if bad:
            raise ValueError(f"outcomes must be one of {sorted(allowed)}, not {bad}")
        return value

    @field_validator("database_url", "broker_url", "result_backend")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError("must be a URL such as postgresql+psycopg://host/db")
        return value or None

    @field_validator("salesforce_login_url", "hubspot_api_base")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https://")
        return value.rstrip("/")

    @field_validator("secret_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:
            Fernet(value.get_secret_value().encode())
        except ValueError as exc:
            raise ValueError(
                "must be a urlsafe base64 32-byte key (make one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from exc
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_path = Path(os.environ.get(f"{ENV_PREFIX}CONFIG", "leadlift.yaml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        if yaml_path.is_file():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path))
        elif f"{ENV_PREFIX}CONFIG" in os.environ:
            raise ConfigError(f"{ENV_PREFIX}CONFIG: no such file {yaml_path}")
        return tuple(sources)

    @property
    def store_url(self) -> str:
        """The database URL actually used (the embedded SQLite file by default)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'leadlift.db').resolve()}"

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @cached_property
    def fernet_key(self) -> bytes:
        """The key that encrypts tokens. The embedded default keeps a generated key
        in ``home/secret.key``; any other store must be given LEADLIFT_SECRET_KEY."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        if not self.embedded:
            raise ConfigError(
                f"{ENV_PREFIX}SECRET_KEY: required when {ENV_PREFIX}DATABASE_URL is set "
                "(tokens are encrypted with it)"
            )
        path = self.home / "secret.key"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
        key = path.read_bytes().strip()
        try:
            Fernet(key)
        except ValueError as exc:
            raise ConfigError(f"{path}: not a valid secret key file") from exc
        return key

    @cached_property
    def fernet(self) -> Fernet:
        return Fernet(self.fernet_key)


def secret_value(value: SecretStr | None) -> str | None:
    """A secret setting's text, or None when it is not set."""
    return value.get_secret_value() if value is not None else None


def _env_name(loc: tuple[Any, ...]) -> str:
    return ENV_PREFIX + "__".join(str(part) for part in loc).upper()


def load_settings(**overrides: Any) -> Settings:
    """Build and validate Settings, turning every validation problem into one ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            shown = error.get("input")
            name = _env_name(error["loc"])
            value = "" if isinstance(shown, dict) else f" (got {shown!r})"
            if error["type"] == "missing" or "SECRET" in name:
                value = ""
            lines.append(f"  {name}: {error['msg']}{value}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None
