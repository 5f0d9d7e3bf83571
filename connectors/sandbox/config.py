"""Configuration of a sandbox CRM: registered OAuth apps, limits and switches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field


def wall_clock() -> dt.datetime:
    """Return the current UTC time (tz-aware)."""
    return dt.datetime.now(dt.UTC)


@dataclass
class SandboxConfig:
    """Everything about a sandbox that is not seed data.

    Attributes:
        salesforce_client_id / salesforce_client_secret: the one registered
            Salesforce connected app.
        salesforce_redirect_uris: allowed callback URLs; empty accepts any.
        salesforce_require_pkce: reject authorize requests without a code_challenge.
        rotate_refresh_tokens: Salesforce refresh-token rotation (a refresh returns
            a new refresh token and the old one dies).
        salesforce_session_seconds: access-token lifetime; None = until expired
            explicitly (Salesforce sends no ``expires_in``).
        salesforce_daily_api_limit: MAX in ``Sforce-Limit-Info: api-usage=N/MAX``.
        salesforce_org_name: Organization.Name.
        max_query_locators: open query cursors kept; the least recently used is evicted.
        query_locator_ttl_seconds: idle cursor expiry.
        lead_firmographics_blank_rate: share of leads whose Industry and
            NumberOfEmployees are left blank (deterministic by lead key).
        hubspot_client_id / hubspot_client_secret / hubspot_redirect_uris: the HubSpot app.
        hubspot_token_seconds: access-token lifetime (``expires_in``).
        hubspot_hub_id / hubspot_app_id / hubspot_hub_domain: token metadata.
        hubspot_requests_per_10s: ten-secondly rolling limit; None = off.
        hubspot_search_per_second: search endpoints' secondly limit; None = off.
        hubspot_search_cap: deepest reachable search result (``after + limit``).
        enforce_field_level_security: custom fields created through the Tooling API stay
            invisible to an API user until a permission set assigned to that user grants
            them (FieldPermissions); the seed's own custom fields are always visible.
        bulk_polls_to_complete: how many job-info polls a Bulk 2.0 job answers
            ``InProgress`` before ``JobComplete`` (0 = complete at once).
        bulk_default_page_rows: query-result page size when ``maxRecords`` is absent.
        bulk_daily_query_jobs: ``DailyBulkV2QueryJobs`` maximum; creating more fails with
            LIMIT_EXCEEDED.
        bulk_daily_batches: ``DailyBulkApiBatches`` maximum (ingest jobs use one per
            10,000 records).
        bulk_max_upload_bytes: most CSV bytes one ingest job accepts (150 MB).
        salesforce_jwt_public_key_pem: PEM certificate or public key of the connected app's
            JWT bearer flow; None disables the grant.
        salesforce_jwt_preauthorized_usernames: usernames pre-authorised for the JWT flow;
            None = every active user.
        clock: source of "now" for writes, token expiry and SOQL date literals.
    """

    salesforce_client_id: str = "sandbox-sf-client"
    salesforce_client_secret: str = "sandbox-sf-secret"
    salesforce_redirect_uris: tuple[str, ...] = ()
    salesforce_require_pkce: bool = False
    rotate_refresh_tokens: bool = False
    salesforce_session_seconds: float | None = None
    salesforce_daily_api_limit: int = 100_000
    salesforce_org_name: str = "Leadlift Sandbox Org"
    max_query_locators: int = 10
    query_locator_ttl_seconds: float = 900.0
    lead_firmographics_blank_rate: float = 0.15
    hubspot_client_id: str = "sandbox-hs-client"
    hubspot_client_secret: str = "sandbox-hs-secret"
    hubspot_redirect_uris: tuple[str, ...] = ()
    hubspot_token_seconds: int = 1800
    hubspot_hub_id: int = 24_681_357
    hubspot_app_id: int = 1_357_913
    hubspot_hub_domain: str = "leadlift-sandbox.hubspot.com"
    hubspot_requests_per_10s: int | None = None
    hubspot_search_per_second: int | None = None
    hubspot_search_cap: int = 10_000
    enforce_field_level_security: bool = True
    bulk_polls_to_complete: int = 1
    bulk_default_page_rows: int = 50_000
    bulk_daily_query_jobs: int = 10_000
    bulk_daily_batches: int = 15_000
    bulk_max_upload_bytes: int = 150 * 1024 * 1024
    salesforce_jwt_public_key_pem: str | None = None
    salesforce_jwt_preauthorized_usernames: tuple[str, ...] | None = None
    clock: Callable[[], dt.datetime] = field(default=wall_clock)

    def now(self) -> dt.datetime:
        """Return the sandbox's current time as a tz-aware UTC datetime."""
        value = self.clock()
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
