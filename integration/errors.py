"""leadlift's error tree, as the core sees it.

The tree's root lives in ``connectors.errors`` (the bottom of the import
graph, so connectors can raise it); the core adds its own leaves here.
"""

from __future__ import annotations

from connectors.errors import (
    AuthError,
    ConfigError,
    LeadliftError,
    PermanentError,
    TransientError,
)

__all__ = [
    "AuthError",
    "ConfigError",
    "LeadliftError",
    "ModelError",
    "NotFoundError",
    "PermanentError",
    "TransientError",
]


class ModelError(LeadliftError):
    """Training or scoring cannot proceed (no data, no active model, bad artifact)."""


class NotFoundError(LeadliftError):
    """A named thing (connection, model version, lead) does not exist."""


def key_path(loc: tuple[object, ...], prefix: str = "") -> str:
    """A pydantic error location as the YAML key path a person would look for
    (``experiments[0].holdout_share``), after ``prefix``."""
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
