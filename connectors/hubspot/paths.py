"""HubSpot API base paths, in one place.

The numbered paths (``/crm/v3``, ``/oauth/v1``) are being replaced by
date-versioned ones (``/crm/objects/2026-03``); hubspot-api-client 12 still
calls the numbered ones, so leadlift's own requests follow it until then.
"""

OAUTH_AUTHORIZE_URL = "https://app.hubspot.com/oauth/authorize"
OAUTH_TOKEN_PATH = "/oauth/v1/token"
OAUTH_ACCESS_TOKEN_INFO_PATH = "/oauth/v1/access-tokens/{token}"
DEFAULT_API_BASE = "https://api.hubapi.com"
