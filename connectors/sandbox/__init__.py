"""Local CRM server speaking a wire-compatible subset of Salesforce and HubSpot.

Typical use::

    sandbox = SandboxCRM.from_seed(seed)
    with SandboxServer(sandbox) as server:
        token = sandbox.issue_tokens("salesforce")
        ...  # point simple-salesforce / hubspot-api-client at server.url, trust server.ca_file

Salesforce side: REST query/queryAll, sObject reads/writes/creates, sObject Collections,
getUpdated/getDeleted, Tooling CustomField, Bulk API 2.0 query and ingest jobs
(``sf.bulk2``), setup records (PermissionSet, FieldPermissions, PermissionSetAssignment)
with field-level security on Tooling-created fields, owner/queue rules, OAuth web-server,
refresh and JWT bearer grants, and a Metadata API (SOAP) subset for Layout and ListView
(``sf.mdapi``; ``sandbox.salesforce.layout(...)`` / ``.list_views()`` from Python).
"""

from .app import create_app
from .config import SandboxConfig
from .faults import Faults
from .hubspot_portal import HubSpotApiError, HubSpotPortal
from .salesforce_org import SalesforceApiError, SalesforceOrg
from .sandbox import SandboxCRM
from .server import SandboxServer, serve
from .soql import SoqlError

__all__ = [
    "Faults",
    "HubSpotApiError",
    "HubSpotPortal",
    "SalesforceApiError",
    "SalesforceOrg",
    "SandboxCRM",
    "SandboxConfig",
    "SandboxServer",
    "SoqlError",
    "create_app",
    "serve",
]
