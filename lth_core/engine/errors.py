"""Errors the engine raises on purpose: each names the field at fault and what is allowed."""
from __future__ import annotations


class LTHError(Exception):
    """Base class for every error the engine raises deliberately."""


class ConfigError(LTHError, ValueError):
    """Bad input: `field` names the offending setting, the message says what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class TrainingFailed(LTHError):
    """A run that cannot continue (e.g. the loss became NaN); the message is one line."""


class Cancelled(LTHError):
    """Raised inside the runner when the caller asked it to stop."""
