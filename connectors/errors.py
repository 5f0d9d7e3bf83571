"""The one error tree every leadlift layer raises.

It lives at the bottom of the import graph so connectors can raise it;
``integration.errors`` re-exports it and adds the core's own errors. Every
class pickles cleanly (Celery moves exceptions between processes) and no
message ever carries a token, a header or a query string.
"""

from __future__ import annotations


class LeadliftError(Exception):
    """Root of every error leadlift raises on purpose."""

    #: True when the same call may succeed later without anyone changing anything.
    transient: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self):  # keep pickling independent of extra constructor args
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[LeadliftError], state: dict) -> LeadliftError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class ConfigError(LeadliftError):
    """A setting is missing or malformed; the message names every bad key."""


class AuthError(LeadliftError):
    """The CRM refused our credentials; an admin must reconnect (re-consent)."""


class TransientError(LeadliftError):
    """Rate limits, 5xx, timeouts: retry after ``retry_after`` seconds."""

    transient = True

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class PermanentError(LeadliftError):
    """The request is wrong and will stay wrong (400, 404, unknown field...)."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class BudgetExhaustedError(TransientError):
    """leadlift reached its share of the CRM's daily API limit; retry after it frees up."""
