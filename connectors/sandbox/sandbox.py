"""`SandboxCRM`: one Salesforce org and one HubSpot portal rendered from the same seed."""

from __future__ import annotations

import time
from typing import Any, Literal

from .auth import TokenStore, ms, salesforce_signature
from .config import SandboxConfig
from .faults import Faults
from .hubspot_portal import HubSpotPortal
from .salesforce_org import SalesforceOrg
from .seed import CrmSeed
from .stats import RollingWindow, Stats


class SandboxCRM:
    """State of the sandbox CRM: records, tokens, faults and counters.

    Build it with `SandboxCRM.from_seed`; serve it with `SandboxServer` or `create_app`.

    Attributes:
        config: the `SandboxConfig`.
        salesforce: the `SalesforceOrg` (``.get``, ``.id_for``, ``.update``, ``.delete``,
            ``.query``, ``.layout``, ``.list_views``, ``.add_queue``, ``.bulk`` jobs).
        hubspot: the `HubSpotPortal` (``.get``, ``.id_for``, ``.update_one``, ``.archive``,
            ``.search``).
        faults: the `Faults` registry (``.inject``, ``.fail_records``, ``.clear``).
        tokens: the OAuth `TokenStore`.
    """

    def __init__(self, salesforce: SalesforceOrg, hubspot: HubSpotPortal, config: SandboxConfig):
        self.config = config
        self.salesforce = salesforce
        self.hubspot = hubspot
        self.tokens = TokenStore(config)
        self.faults = Faults()
        self._stats = Stats()
        self.hubspot_window = RollingWindow(10.0)
        self.hubspot_search_window = RollingWindow(1.0)
        self.base_url = "https://127.0.0.1"

    @classmethod
    def from_seed(cls, seed: CrmSeed, config: SandboxConfig | None = None) -> SandboxCRM:
        """Render ``seed`` into a new sandbox.

        Args:
            seed: the neutral CRM data (validated first).
            config: apps, limits and switches; defaults to `SandboxConfig()`.
        """
        config = config or SandboxConfig()
        seed.validate()
        return cls(SalesforceOrg(seed, config), HubSpotPortal(seed, config), config)

    # ---- tokens ------------------------------------------------------------------------------
    def salesforce_token_response(self, access, refresh_token: str | None, base_url: str) -> dict:
        """Build a Salesforce token response (crm-api.md §2.1) for an issued token."""
        user_id = access.user_id or self.salesforce.integration_user_id
        identity = f"{base_url}/id/{self.salesforce.org_id}/{user_id}"
        issued_at = ms(access.issued)
        body: dict[str, Any] = {"access_token": access.token}
        if refresh_token:
            body["refresh_token"] = refresh_token
        body.update(
            {
                "signature": salesforce_signature(
                    self.config.salesforce_client_secret, identity, issued_at
                ),
                "scope": access.scope or "api refresh_token",
                "instance_url": base_url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
            }
        )
        return body

    def hubspot_token_response(self, access) -> dict:
        """Build a HubSpot token response."""
        return {
            "token_type": "bearer",
            "refresh_token": access.refresh_token,
            "access_token": access.token,
            "expires_in": int(self.config.hubspot_token_seconds),
        }

    def issue_tokens(
        self, crm: Literal["salesforce", "hubspot"], base_url: str | None = None
    ) -> dict:
        """Issue tokens without an OAuth dance; returns a token-endpoint-shaped dict.

        Args:
            crm: "salesforce" or "hubspot".
            base_url: the server URL for Salesforce's ``instance_url``/``id`` (defaults to the
                running server's URL, once started).
        """
        if crm == "salesforce":
            access = self.tokens.issue("salesforce", "api refresh_token", self.salesforce.org_id)
            return self.salesforce_token_response(
                access, access.refresh_token, base_url or self.base_url
            )
        if crm == "hubspot":
            access = self.tokens.issue("hubspot", "oauth crm.objects.contacts.read")
            return self.hubspot_token_response(access)
        raise ValueError("crm must be 'salesforce' or 'hubspot'")

    def expire_access_tokens(self, crm: Literal["salesforce", "hubspot"] | None = None) -> int:
        """Expire every live access token (refresh tokens keep working); return the count."""
        return self.tokens.expire(crm)

    # ---- counters ----------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Return ``{"salesforce": {"total", "by_endpoint"}, "hubspot": ..., "oauth": ...}``.

        Endpoints are ``"<METHOD> <url rule>"``; Metadata API (SOAP) calls add the operation,
        e.g. ``"POST /services/Soap/m/<version> readMetadata"``.
        """
        out = self._stats.snapshot()
        out["salesforce"]["api_usage"] = self.salesforce.api_usage
        return out

    def reset_stats(self) -> None:
        """Zero the request counters (not Salesforce's daily API usage)."""
        self._stats.reset()

    def count(self, crm: str, endpoint: str) -> None:
        self._stats.count(crm, endpoint)

    def now_ms(self) -> int:
        return int(time.time() * 1000)
