"""Salesforce connector built on simple-salesforce."""

from connectors.salesforce.auth import SalesforceCredentials
from connectors.salesforce.client import API_VERSION
from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.mapping import SalesforceOptions

__all__ = ["API_VERSION", "SalesforceConnector", "SalesforceCredentials", "SalesforceOptions"]
