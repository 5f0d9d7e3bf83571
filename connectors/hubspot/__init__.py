"""HubSpot connector built on hubspot-api-client."""

from connectors.hubspot.auth import HubSpotCredentials
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.mapping import HubSpotOptions

__all__ = ["HubSpotConnector", "HubSpotCredentials", "HubSpotOptions"]
