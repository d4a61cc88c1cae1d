"""Keeping the passwords of connection strings out of messages.

libpq quotes a connection string it cannot parse, or the part of it that is
wrong (``invalid percent-encoded token: "s3%cret"``), in its error text. The
``que`` command and the locker replace the passwords of the connection
strings they were given before such text reaches a message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict

REDACTED = "***"

# user:password@ in a URL, wherever it is in the text (an argument such as
# --connection-url=postgresql://..., say), read without parsing it (it may be
# malformed); an unencoded "@" in a password ends it at the last one.
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:(?P<password>[^\s]*)@[^@\s]*")
# password=... as a keyword (key=value strings) or a URL query parameter.
_KEYWORD_PASSWORD = re.compile(
    r"(?:^|[\s?&])password\s*=\s*(?P<password>'(?:[^'\\]|\\.)*'|[^\s&]+)"
)


def passwords(conninfo: str) -> set[str]:
    """Every spelling of a password ``conninfo`` holds: as written, unquoted, decoded."""
    found: set[str] = set()
    for pattern in (_URL_PASSWORD, _KEYWORD_PASSWORD):
        for match in pattern.finditer(conninfo):
            written = match["password"]
            found |= {written, written.strip("'"), unquote(written)}
    try:
        parsed = conninfo_to_dict(conninfo).get("password")
    except psycopg.ProgrammingError:
        parsed = None
    if parsed:
        found.add(str(parsed))
    return {secret for secret in found if secret}


def redact_passwords(text: str, conninfos: Iterable[str | None]) -> str:
    """``text`` with every password of ``conninfos`` replaced by ``***``."""
    secrets = {secret for conninfo in conninfos if conninfo for secret in passwords(conninfo)}
    for secret in sorted(secrets, key=len, reverse=True):  # longest first: no fragment left
        # Not inside a longer word: a password "p" leaves "postgres" alone.
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", REDACTED, text)
    return text
