"""Errors raised by the appliance layer.

One root, :class:`SmsGenieError`, and a base per area. Leaves also subclass
a built-in where one fits, so callers may catch ``ValueError`` for bad input.
Messages are for the person who can act: the shop clerk for a bad list, the
technician for a bad config.
"""

from __future__ import annotations


class SmsGenieError(Exception):
    """Base class for every error raised by ``appliance``."""


class ConfigError(SmsGenieError, ValueError):
    """The config file is missing, unreadable, or has a wrong key or value."""


class DataDirError(SmsGenieError, OSError):
    """The data directory cannot be created, opened or locked."""


class DaemonAlreadyRunning(DataDirError):
    """Another smsgenie daemon holds the data directory."""


class QueueError(SmsGenieError):
    """Base for send-queue errors."""


class MessageNotFound(QueueError, LookupError):
    """No message with that id."""


class SendListError(SmsGenieError, ValueError):
    """A send list (CSV) could not be read."""


class MessageTextError(SmsGenieError, ValueError):
    """The message text cannot be sent (empty, or too long)."""
