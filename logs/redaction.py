"""Credential redaction for everything a call stores.

Runs in the ingest service before anything reaches the database, so no
credential is ever written, whatever surface later reads the call. Three rules:

1. Header-style names (Authorization, X-Api-Key, Cookie, …) are always redacted.
2. A value is redacted when its key's name, split into segments
   (``apiKey`` → api, key; ``client-secret`` → client, secret), contains a
   sensitive word: key, token, secret, password, auth, credential and a few
   spellings of them. Counters survive: ``max_tokens`` has the segment
   ``tokens`` (plural, not ``token``), and ``token_count: 12`` is a number
   under a counting word.
3. Strings that look like API keys or bearer tokens are replaced wherever they
   appear, even inside free text such as a prompt.
"""

import functools
import re
from collections.abc import Callable
from typing import Any

REDACTED = "[REDACTED]"

SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
        "x-auth-token",
    }
)

SENSITIVE_SEGMENTS = frozenset(
    {
        "key",
        "keys",
        "apikey",
        "token",
        "secret",
        "secrets",
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "auth",
        "oauth",
        "authorization",
        "credential",
        "credentials",
        "cookie",
        "cookies",
        "signature",
        "bearer",
    }
)

# A number under one of these words is a count or a limit, not a credential.
COUNTER_SEGMENTS = frozenset(
    {"count", "counts", "max", "min", "num", "number", "limit", "limits", "total", "length", "len"}
)

_API_KEY_PATTERNS = [
    r"\bgithub_pat_[A-Za-z0-9_]{22,}",  # GitHub fine-grained token
    # HTTP Basic credentials; base64 of user:password always has a digit, + / or =
    # somewhere, which keeps "a Basic understanding" out.
    r"\bBasic\s+(?=[A-Za-z]*[0-9+/=])[A-Za-z0-9+/]{12,}={0,2}",
    r"\bsk-[A-Za-z0-9][A-Za-z0-9_\-]{15,}",  # OpenAI-style, sk-proj-…, sk-ant-…, gateway keys
    r"\b[Bb]earer\s+[A-Za-z0-9\-._~+/]{12,}=*",
    r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key id
    r"\bAIza[0-9A-Za-z\-_]{35}",  # Google API key
    r"\bgh[pousr]_[A-Za-z0-9]{36,}",  # GitHub token
    r"\bxox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack token
    r"\bhf_[A-Za-z0-9]{30,}",  # Hugging Face token
    r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # JWT
]
# A key right after a percent-escape (…%3Dsk-…, %22sk-…) has no word boundary
# before it, so each leading \b also accepts "just after %XX".
_START = r"(?:\b|(?<=%[0-9A-Fa-f]{2}))"
API_KEY_RE = re.compile(
    "|".join(f"(?:{_START}{p.removeprefix(chr(92) + 'b')})" for p in _API_KEY_PATTERNS)
)

# Every pattern above contains one of these literally; a string with none of
# them cannot match (redact_text's fast path relies on it).
_TRIGGERS = (
    "github_pat_",
    "Basic",
    "sk-",
    "earer",
    "AKIA",
    "AIza",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "xox",
    "hf_",
    "eyJ",
)

# Names written as one word, which segmenting cannot split.
COMPOUND_SENSITIVE_NAMES = frozenset(
    {
        "apikey",
        "xapikey",
        "accesstoken",
        "authtoken",
        "refreshtoken",
        "idtoken",
        "sessiontoken",
        "bearertoken",
        "secretkey",
        "privatekey",
        "clientsecret",
        "apisecret",
        "secretaccesskey",
    }
)

_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPLIT_RE = re.compile(r"[^A-Za-z0-9]+")


def name_segments(name: str) -> list[str]:
    """``X-Api-Key`` → [x, api, key]; ``accessToken`` → [access, token]."""
    parts = _SPLIT_RE.split(_CAMEL_RE.sub("_", name))
    return [p.lower() for p in parts if p]


@functools.lru_cache(maxsize=8192)
def _name_verdict(name: str) -> str:
    """ "always", "never", or "unless-number" (a counter such as token_count)."""
    if name.strip().lower() in SENSITIVE_HEADERS:
        return "always"
    segments = name_segments(name)
    if not segments:
        return "never"
    if "".join(segments) in COMPOUND_SENSITIVE_NAMES:
        return "always"
    if not SENSITIVE_SEGMENTS.intersection(segments):
        return "never"
    return "unless-number" if COUNTER_SEGMENTS.intersection(segments) else "always"


def is_sensitive_name(name: str, value: Any = None) -> bool:
    verdict = _name_verdict(name)
    if verdict != "unless-number":
        return verdict == "always"
    return not (isinstance(value, int | float) and not isinstance(value, bool))


def may_hold_key(text: str) -> bool:
    """Whether the key patterns could match anywhere in ``text``.

    Most strings (prompts, answers) hold no key at all: a few substring tests
    in C rule that out far faster than running the full pattern over them.
    """
    for trigger in _TRIGGERS:  # noqa: SIM110 (a loop: no generator to set up per string)
        if trigger in text:
            return True
    return False


def redact_text(text: str) -> str:
    if not may_hold_key(text):
        return text
    return API_KEY_RE.sub(REDACTED, text)


def redact(value: Any) -> Any:
    """A copy of a JSON-like value with every credential replaced by ``[REDACTED]``."""
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for raw_key, item in value.items():
            key = redact_text(str(raw_key))
            while key in result:  # two keys redacted to the same text: keep both
                key += "_"
            result[key] = REDACTED if is_sensitive_name(str(raw_key), item) else redact(item)
        return result
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


# --- the ingest service's fast path -----------------------------------------------

_PLAIN_LEAVES = frozenset({str, int, float, bool, type(None)})


def names_need_redaction(value: Any) -> bool:
    """Whether ``redact(value)`` could differ from ``value`` other than inside a string.

    True when some key is a sensitive name (rule 1 or 2), some key is not a
    string, or some value is not plain JSON (dict, list, str, int, float, bool,
    None); ``redact`` is then left to decide. Strings themselves (rule 3) are
    not looked at: ``redact_json`` judges them all at once on the JSON text.
    """
    cls = type(value)
    if cls is dict:
        for key, item in value.items():
            if type(key) is not str:
                return True
            verdict = _name_verdict(key)
            if verdict != "never" and (
                verdict == "always" or (type(item) is not int and type(item) is not float)
            ):
                return True
            item_cls = type(item)
            if item_cls is dict or item_cls is list:
                if names_need_redaction(item):
                    return True
            elif item_cls not in _PLAIN_LEAVES:
                return True
        return False
    if cls is list:
        for item in value:
            item_cls = type(item)
            if item_cls is dict or item_cls is list:
                if names_need_redaction(item):
                    return True
            elif item_cls not in _PLAIN_LEAVES:
                return True
        return False
    return cls not in _PLAIN_LEAVES


def redact_json(value: Any, text: str | None, dumps: Callable[[Any], str]) -> tuple[Any, str]:
    """``redact(value)`` and its JSON text as written by ``dumps``.

    ``text`` is ``dumps(value)`` when the caller has it (``None`` otherwise).
    Every key pattern needs one of a few substrings, which JSON never escapes,
    so when ``text`` has none of them no string in ``value`` (key or value) can
    change; when no name is sensitive either, ``redact(value)`` equals ``value``
    and both come back as they are, without a copy or a second encoding. This
    is the common case for request bodies and responses. Raises what ``dumps``
    raises for a value that is not plain JSON.
    """
    if text is not None and not may_hold_key(text) and not names_need_redaction(value):
        return value, text
    redacted = redact(value)
    return redacted, dumps(redacted)
