"""Keeping secrets out of logs.

Client libraries log more than they should at DEBUG: kafka-python's admin client logs its whole
configuration, kafka-python and aiokafka log every request they send (a SASL PLAIN request holds the
password). Two guards:

- :class:`Redacted`: a secret handed to a library as a plain ``str`` whose ``repr`` is the mask, so a
  logged dict of options shows ``'********'``;
- :func:`install`: a log-record factory that replaces every :func:`register`-ed secret (as text, and as
  it appears inside a ``repr`` of text or bytes) in each record's message, traceback and stack by the
  mask, before any handler sees it. ``energymon.settings.load`` registers the settings' secrets and
  installs it in every energymon process.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Iterable
from typing import Any

MASK = "********"
#: Secrets shorter than this are not searched for (they would mask ordinary words); characters.
MIN_CHARS = 4

_lock = threading.Lock()
_forms: set[str] = set()
_pattern: re.Pattern[str] | None = None
_installed = False


class Redacted(str):
    """A secret as a plain ``str`` (for client libraries) whose ``repr`` is the mask."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)


def _forms_of(secret: str) -> set[str]:
    """The secret as text, inside a repr of text, inside a repr of its UTF-8 bytes."""
    return {secret, repr(secret)[1:-1], repr(secret.encode("utf-8"))[2:-1]}


def register(secrets: Iterable[str | None]) -> None:
    """Mask these secrets in every log record from now on (None, and ones under MIN_CHARS, are skipped)."""
    global _pattern
    with _lock:
        before = len(_forms)
        for secret in secrets:
            if secret is not None and len(secret) >= MIN_CHARS:
                _forms.update(_forms_of(str(secret)))
        if len(_forms) != before:
            alternatives = sorted(_forms, key=len, reverse=True)  # longest first: no partial masks
            _pattern = re.compile("|".join(re.escape(form) for form in alternatives))


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by the mask."""
    pattern = _pattern
    return text if pattern is None else pattern.sub(MASK, text)


def _scrub(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format: leave it to the handler, which reports it
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        text = "".join(traceback.format_exception(*record.exc_info)).removesuffix("\n")
        record.exc_text = redact(text)  # what logging.Formatter would print, masked
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def install() -> None:
    """Scrub every log record of the registered secrets as it is made (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        make = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make(*args, **kwargs)
            if _pattern is not None:
                _scrub(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
