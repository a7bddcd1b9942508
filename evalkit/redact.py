"""Keep secrets out of everything evalkit writes (results.json, samples, logs, config dumps).

Config keys that hold secrets (``api_key``, ``token``, ``password``...) are replaced by ``"***"``;
keys ending in ``_env`` hold only the *name* of an environment variable and are kept. Any string
that contains the value of a secret-looking environment variable (``*_API_KEY``, ``*_TOKEN``,
``HF_TOKEN``, ``DASHSCOPE_API_KEY``...) has that value replaced as well.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

_SECRET_KEY = re.compile(
    r"^key$|(^|[_-])((api|access|secret|private|subscription|auth)[_-]?key|token|secret|password|passwd|"
    r"authorization|auth|bearer|cookie|credentials?|session[_-]?token|signature|sig)$",
    re.IGNORECASE,
)
#: keys whose whole value is credentials (HTTP headers carry Authorization, X-Api-Key, Cookie...)
_SECRET_CONTAINER = re.compile(r"(^|[_-])(headers|credentials|auth)$", re.IGNORECASE)
_SECRET_ENV = re.compile(r"(API_KEY|_TOKEN$|^TOKEN$|SECRET|PASSWORD)", re.IGNORECASE)
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{6,}")
_SK_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}")
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")
#: query parameters that are never secrets (kept so a URL stays readable)
_PUBLIC_QUERY = frozenset({"api-version", "api_version", "version", "v", "model", "format", "lang"})
MASK = "***"
#: secrets found in the run's config (URL credentials, header values), masked everywhere
_REGISTERED: set[str] = set()


def secret_values(extra: Iterable[str] = ()) -> list[str]:
    """Values of secret-looking environment variables (length ≥ 8), registered config secrets,
    plus ``extra``."""
    values = [v for k, v in os.environ.items() if _SECRET_ENV.search(k) and v and len(v) >= 8]
    values += [v for v in _REGISTERED if v]
    values += [v for v in extra if v]
    return sorted(set(values), key=len, reverse=True)


def _redact_url(match: re.Match[str]) -> str:
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    url = match.group(0)
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, v if k.lower() in _PUBLIC_QUERY else MASK) for k, v in pairs], safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return url


def url_secret_parts(url: str) -> list[str]:
    """The credential-looking pieces of a URL: userinfo and query values (public ones excepted)."""
    from urllib.parse import parse_qsl, urlsplit

    try:
        parts = urlsplit(url)
        out = [parts.password or ""]
        if "@" in parts.netloc and not parts.password:
            out.append(parts.username or "")
        out += [
            v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in _PUBLIC_QUERY
        ]
    except ValueError:
        return []
    return [v for v in out if v and len(v) >= 4]


def redact_text(text: str, secrets: Iterable[str] | None = None) -> str:
    """Replace every secret value inside ``text``: known secret values, URL credentials and query
    values, ``Bearer``/``Basic`` tokens and ``sk-...`` keys."""
    for s in secret_values() if secrets is None else secrets:
        if s and s in text:
            text = text.replace(s, MASK)
    if "://" in text:
        text = _URL.sub(_redact_url, text)
    text = _BEARER.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    return _SK_KEY.sub(MASK, text)


def register_config_secrets(cfg: Any) -> None:
    """Remember the secrets a config carries (URL credentials and query values, header values,
    secret-keyed values) so that every later message, log line and file masks them."""

    def walk(x: Any, key: str = "", inside: bool = False) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, str(k), inside or bool(_SECRET_CONTAINER.search(str(k))))
        elif isinstance(x, list | tuple):
            for v in x:
                walk(v, key, inside)
        elif isinstance(x, str) and x:
            if (inside or (_SECRET_KEY.search(key) and not key.endswith("_env"))) and len(x) >= 4:
                _REGISTERED.add(x)
                for word in x.split():
                    if len(word) >= 8:
                        _REGISTERED.add(word)
            if "://" in x:
                _REGISTERED.update(url_secret_parts(x))

    walk(cfg)


class RedactingFilter:
    """A :mod:`logging` filter that masks secrets in every record's message."""

    def filter(self, record: Any) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a badly formatted record is left alone
            return True
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install_log_redaction() -> None:
    """Mask secrets in everything the root logger's handlers (console, Hydra's log file) write."""
    import logging

    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def redact(obj: Any, secrets: Iterable[str] | None = None) -> Any:
    """Recursively redact a JSON-like object (dicts, lists, strings)."""
    values = secret_values() if secrets is None else list(secrets)

    def walk(x: Any, key: str = "") -> Any:
        if isinstance(x, dict):
            if key and _SECRET_CONTAINER.search(key) and not key.endswith("_env"):
                return {k: MASK if v not in (None, "") else v for k, v in x.items()}
            return {k: walk(v, str(k)) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [walk(v, key) for v in x]
        if isinstance(x, str):
            if (
                key
                and (_SECRET_KEY.search(key) or _SECRET_CONTAINER.search(key))
                and not key.endswith("_env")
                and x not in ("", "???")
            ):
                return MASK
            return redact_text(x, values)
        return x

    return walk(obj)
