"""Keep secrets out of what langgraph-hera writes: errors, logs, trajectories, traces.

API keys travel only in request headers. Anything this package records from the outside world
(an exception message, a server's error body) passes through `redact` first, which removes

- the values of environment variables whose names say they are secret (``*_KEY``, ``*TOKEN*``,
  ``*SECRET*``, ``*PASSWORD*``; values of 8+ characters),
- values registered with `register_secret` (keys passed in code rather than the environment),
- anything shaped like an OpenAI / Anthropic / LangSmith key or a bearer token.

Recorded conversations (training traces) also pass through `redact_personal`, which removes
e-mail addresses and phone numbers on top of `redact` (`redact` itself leaves them alone:
errors and logs keep their numbers).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"
#: What `redact_personal` writes for an e-mail address / a phone number.
EMAIL_REDACTED = "[EMAIL]"
PHONE_REDACTED = "[PHONE]"

_SECRET_NAME = re.compile(r"(_KEY$|^KEY$|TOKEN|SECRET|PASSWORD|PASSWD)", re.IGNORECASE)
_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}"),
    re.compile(r"\blsv2_[A-Za-z0-9_]{12,}"),
    re.compile(r"(?i)(?<=bearer )[A-Za-z0-9._~+/\-]{12,}=*"),
)
_registered: set[str] = set()


def register_secret(value: str) -> None:
    """Redact ``value`` wherever langgraph-hera records text (for keys not in the env)."""
    if value and len(value) >= 8:
        _registered.add(value)


def known_secrets(environ: Iterable[tuple[str, str]] | None = None) -> list[str]:
    """The literal secrets `redact` removes, longest first."""
    items = environ if environ is not None else os.environ.items()
    found = {v for k, v in items if _SECRET_NAME.search(k) and v and len(v) >= 8}
    return sorted(found | _registered, key=len, reverse=True)


def redact(text: Any) -> str:
    """``text`` (made a string) with every known secret and key-shaped token replaced."""
    out = str(text)
    for secret in known_secrets():
        if secret in out:
            out = out.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        out = pattern.sub(REDACTED, out)
    return out


def redact_obj(obj: Any) -> Any:
    """`redact` applied to every string inside dicts / lists / tuples."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(redact_obj(v) for v in obj)
    return obj


_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
# A phone number: "+" and 9-15 digits; or an optional +country code and (area) code followed by
# groups of digits separated by a space, dot or dash; 9-15 digits in all (E.164's maximum is
# 15). Dates (8 digits), times, IPv4 addresses (1-digit groups) and unseparated numbers (an
# amount, an id) are left alone: a tool argument such as 123456789 must stay what it is.
_PHONE = re.compile(
    r"(?<![\w.+-])(?:"
    r"(?:\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?|\(\d{1,4}\)[\s.-]?)\d{1,4}(?:[\s.-]\d{2,4}){1,4}"
    r"|\+\d{9,15}"
    r"|\d{2,4}(?:[\s.-]\d{2,4}){2,4}"
    r")(?![\w.:-])"
)


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    structured = text.startswith("+") or "(" in text or digits >= 10
    return PHONE_REDACTED if 9 <= digits <= 15 and structured else text


def redact_personal(text: Any) -> str:
    """`redact` plus e-mail addresses (``[EMAIL]``) and phone numbers (``[PHONE]``).

    Phone numbers are found by shape: a ``+`` country code or an ``(area)`` code or at least 10
    digits, in 3-5 separated groups, 9-15 digits in all; dates, IP addresses and unseparated
    numbers are kept.

    Example:
        >>> redact_personal("mail ann@example.com or call +1 415-555-0100")
        'mail [EMAIL] or call [PHONE]'
    """
    out = _EMAIL.sub(EMAIL_REDACTED, redact(text))
    return _PHONE.sub(_phone, out)


def redact_personal_obj(obj: Any) -> Any:
    """`redact_personal` applied to every string inside dicts / lists / tuples (keys kept)."""
    if isinstance(obj, str):
        return redact_personal(obj)
    if isinstance(obj, dict):
        return {k: redact_personal_obj(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(redact_personal_obj(v) for v in obj)
    return obj


def error_text(exc: BaseException) -> str:
    """``"<Type>: <message>"`` of an exception, redacted (how failures are recorded)."""
    return redact(f"{type(exc).__name__}: {exc}")


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message (installed on ``langgraph_hera``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logged as it is
            return True
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = redact(message), None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the redacting filter (filters are not inherited by
    child loggers, so every module of the package takes its logger from here)."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def redacting_langsmith_client(**kwargs: Any) -> Any:
    """A LangSmith ``Client`` that redacts every run it sends (inputs, outputs, errors).

    Example:
        >>> tracer = LangChainTracer(client=redacting_langsmith_client())  # doctest: +SKIP
    """
    from langsmith import Client

    def process(runs: Any) -> Any:
        return [redact_obj(dict(r)) for r in runs]

    kwargs.setdefault("run_ops_buffer_size", 1)
    return Client(process_buffered_run_ops=process, **kwargs)
