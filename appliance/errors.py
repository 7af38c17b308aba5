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


class StorageFull(DataDirError):
    """The data partition (or the database's size limit) is full: nothing new can be written for now."""


class DatabaseDamaged(DataDirError):
    """The database file is damaged, or is not an SMS Genie database at all."""


class DaemonAlreadyRunning(DataDirError):
    """Another smsgenie daemon holds the data directory."""


class QueueError(SmsGenieError):
    """Base for send-queue errors."""


class MessageNotFound(QueueError, LookupError):
    """No message (or send list) with that id."""


class ListStateError(QueueError, ValueError):
    """A send list cannot go to that state from where it is (e.g. resume a cancelled list)."""


class LedgerError(SmsGenieError):
    """Base for credit and top-up errors."""


class InsufficientCredit(LedgerError):
    """The balance does not cover what is asked of it."""


class TopUpError(LedgerError, ValueError):
    """A top-up code was refused. Subclasses say why, each in its own words."""


class TopUpTypo(TopUpError):
    """The code is mistyped: wrong characters, wrong length, or its checksum does not match."""


class TopUpForged(TopUpError):
    """The code's signature does not verify against the vendor key."""


class TopUpWrongDevice(TopUpError):
    """The code was issued for another box."""


class TopUpExpired(TopUpError):
    """The code's expiry date has passed."""


class TopUpAlreadyRedeemed(TopUpError):
    """The code was redeemed before."""


class TopUpUnsupported(TopUpError):
    """The code is of a newer format than this box understands."""


class TopUpNeedsKeywords(TopUpError):
    """The code asks for a newer vendor keyword list than the box has: import it, then the code counts."""


class VendorKeyError(LedgerError, ValueError):
    """The vendor key is missing, unreadable or malformed."""


class SendListError(SmsGenieError, ValueError):
    """A send list (CSV) could not be read."""


class SettingsError(SmsGenieError, ValueError):
    """A setting has a value it cannot take, or the settings file is damaged."""


class TemplateError(SmsGenieError, ValueError):
    """A template cannot be filled: a bad brace, or a field the send list does not have."""


class ExportRangeError(SmsGenieError, ValueError):
    """The days asked for an export of the record are not a range (the last before the first)."""


class ExportCheckFailed(SmsGenieError, ValueError):
    """A record export (or a receipt) does not prove what it claims: changed, cut, or not from this box."""


class KeywordListError(SmsGenieError, ValueError):
    """A keyword list file is malformed or its vendor signature does not verify."""


class MessageTextError(SmsGenieError, ValueError):
    """The message text cannot be sent (empty, or too long)."""


class IntakeError(SmsGenieError, ValueError):
    """A send list or message cannot be queued as asked (nothing sendable, a start time in the past...)."""


class NothingToSend(IntakeError):
    """Every row of the list (or every message of an API call) was refused."""


class NoVendorKeywords(IntakeError):
    """The box has no forbidden-word list from the vendor yet: marketing lists wait for one."""


class AlreadyQueued(IntakeError):
    """This upload (or API call with this Idempotency-Key) was queued before: nothing is queued again."""

    def __init__(self, message: str, list_id: int | None):
        super().__init__(message)
        self.list_id = list_id


class KeyReused(IntakeError):
    """An Idempotency-Key came back with another request than the one it was first used for."""


class StartTimeError(IntakeError):
    """The start time asked for has already passed."""


class ServiceCodeMissing(ConfigError):
    """The config has no service code, and every message must be recorded with one."""


class SignatureMissing(IntakeError):
    """Marketing needs the shop's 【signature】 first: the rules want every marketing text to name its sender."""


class CustomerError(SmsGenieError, ValueError):
    """Base for the customer book: a number, a field or a file the book cannot take."""


class ConsentError(CustomerError):
    """A consent that cannot be recorded as given (no evidence, a source that is the box's own)."""


class CustomerNotFound(CustomerError, LookupError):
    """No customer with that number in the book."""
