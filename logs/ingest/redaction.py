"""Credential redaction for everything a call stores.

Runs in the ingest service before anything reaches the database, so no
credential is ever written, whatever surface later reads the call. The rules:

1. Header-style names (Authorization — also spelt Authorisation —, X-Api-Key,
   Cookie, …) are always redacted.
2. A value is redacted when its key's name, split into segments
   (``apiKey`` → api, key; ``client-secret`` → client, secret), contains a
   sensitive word: key, token, secret, password, pass, passcode, auth,
   credential, session id and a few spellings of them. Counters survive:
   ``max_tokens`` has the segment ``tokens`` (plural, not ``token``), and
   ``token_count: 12`` is a number under a counting word.
3. Strings that look like credentials are replaced wherever they appear, even
   inside free text such as a prompt: API keys and tokens in the formats of the
   services that issue them (OpenAI, Anthropic, AWS, Google, GitHub, GitLab,
   Slack, Stripe, Hugging Face, Perplexity; after gitleaks' rule set), JWTs,
   ``Bearer`` credentials with the scheme in any letter case (also URL- or
   form-encoded: ``Bearer%20…``, ``Bearer+…``), ``Basic`` credentials, PEM
   private-key blocks, and the user and password of a URL
   (``https://user:password@host``).
4. In a URL's query string, the value of a parameter with a sensitive name
   (``?api_key=…``, ``&access_token=…``, ``&sig=…``) is replaced.
"""

import functools
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REDACTED = "[REDACTED]"

SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "authorisation",
        "proxy-authorization",
        "proxy-authorisation",
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
        "passwords",
        "passwd",
        "pwd",
        "pass",
        "passcode",
        "passphrase",
        "auth",
        "oauth",
        "authorization",
        "authorisation",
        "credential",
        "credentials",
        "creds",
        "cookie",
        "cookies",
        "signature",
        "sig",
        "bearer",
        "sessionid",
        "sessid",
        "phpsessid",
        "jsessionid",
    }
)

# A number under one of these words is a count or a limit, not a credential.
COUNTER_SEGMENTS = frozenset(
    {"count", "counts", "max", "min", "num", "number", "limit", "limits", "total", "length", "len"}
)


@dataclass(frozen=True)
class _Rule:
    """One kind of credential in free text (rule 3).

    Every match of ``pattern`` contains one of ``triggers`` — substrings, or
    patterns that start with a literal —, looked for in the lower-cased text
    when ``folded``. A text holding none cannot match: most texts are ruled out
    by a few scans at C speed, and only the rules a text triggers run their
    pattern. No trigger holds a character that JSON escapes, so they rule out a
    part's JSON text as surely as each of its strings (``redact_json``). Each
    pattern, too, starts with a literal, which the regular expression engine
    finds as fast as a substring; a pattern starting with an assertion or a
    class is tried at every position, tens of times slower.
    """

    pattern: re.Pattern[str]
    triggers: tuple[str | re.Pattern[str], ...]
    folded: bool = False
    replacement: str = REDACTED

    def triggered_by(self, text: str) -> bool:
        for trigger in self.triggers:
            if trigger in text if isinstance(trigger, str) else trigger.search(text):
                return True
        return False


def _word(prefix: str, rest: str) -> str:
    r"""``prefix`` + ``rest`` where ``prefix`` starts a word (as ``\b`` would say), or
    follows a percent-escape (…%3Dsk-…, %22sk-…, in a URL); checked after the
    literal prefix, so the pattern still starts with it."""
    literal = re.escape(prefix)
    return rf"{literal}(?:(?<!\w{literal})|(?<=%[0-9A-Fa-f]{{2}}{literal})){rest}"


# After gitleaks' rules where it has one (private-key, github-*, gitlab-pat,
# aws-access-token, gcp-api-key, slack-*, huggingface-*, jwt, perplexity-api-key).
_RULES = (
    # PEM private key blocks, to their END line or, cut short, over their base64 lines.
    _Rule(
        re.compile(
            r"-----(?i:BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----)"
            r"(?:[\s\S]*?-----(?i:END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----)"
            r"|(?:(?:\s|\\[rn])+[A-Za-z0-9+/=]{16,})*)"
        ),
        ("-----",),
    ),
    _Rule(  # GitHub tokens
        re.compile(_word("g", r"(?:h[pousr]_[A-Za-z0-9]{36,}|ithub_pat_\w{22,})")),
        (re.compile(r"gh[pousr]_"), "github_pat_"),
    ),
    _Rule(  # GitLab tokens
        re.compile(_word("gl", r"(?:pat|dt|ft|rt|soat|cbt|ptt|agent)-[\w-]{20,}")),
        (re.compile(r"gl(?:pat|dt|ft|rt|soat|cbt|ptt|agent)-"),),
    ),
    # HTTP Basic credentials; base64 of user:password always has a digit, + / or =
    # somewhere, which keeps "a Basic understanding" out. (Not "basic": a word of prose.)
    _Rule(
        re.compile(_word("B", r"(?:asic|ASIC)\s+(?=[A-Za-z]*[0-9+/=])[A-Za-z0-9+/]{12,}={0,2}")),
        (re.compile(r"B(?:asic|ASIC)"),),
    ),
    # A bearer token, the scheme in any letter case (RFC 9110), also URL- or
    # form-encoded (Bearer%20…, Bearer+…).
    _Rule(
        re.compile(
            r"(?i:b)(?:(?<!\w[Bb])|(?<=%[0-9A-Fa-f]{2}[Bb]))(?i:earer)(?:\s|%20|\+)+"
            r"[A-Za-z0-9\-._~+/]{12,}=*"
        ),
        ("bearer",),
        folded=True,
    ),
    # OpenAI-style (sk-proj-…), Anthropic (sk-ant-…), gateway keys
    _Rule(re.compile(_word("sk-", r"[A-Za-z0-9][A-Za-z0-9_\-]{15,}")), ("sk-",)),
    _Rule(  # Stripe secret and restricted keys
        re.compile(_word("sk_", r"(?:test|live|prod)_[A-Za-z0-9]{10,99}")), ("sk_",)
    ),
    _Rule(re.compile(_word("rk_", r"(?:test|live|prod)_[A-Za-z0-9]{10,99}")), ("rk_",)),
    _Rule(  # AWS access key ids; Google API keys
        re.compile(
            _word("A", r"(?:(?:3T[A-Z0-9]|KIA|SIA|BIA|CCA)[0-9A-Z]{16}\b|Iza[0-9A-Za-z\-_]{35})")
        ),
        (re.compile(r"A(?:KIA|SIA|3T|BIA|CCA|Iza)"),),
    ),
    _Rule(  # Slack tokens
        re.compile(_word("x", r"(?:ox[abeoprs]-[A-Za-z0-9\-]{10,}|app-\d-[A-Za-z0-9\-]{10,})")),
        (re.compile(r"x(?:ox|app-)"),),
    ),
    _Rule(  # Slack webhooks
        re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{20,}"),
        ("hooks.slack.com",),
    ),
    _Rule(re.compile(_word("hf_", r"[A-Za-z0-9]{30,}")), ("hf_",)),  # Hugging Face
    _Rule(re.compile(_word("pplx-", r"[A-Za-z0-9]{48}")), ("pplx-",)),  # Perplexity
    _Rule(  # JWT
        re.compile(_word("eyJ", r"[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")),
        ("eyJ",),
    ),
    # The user:password of a URL (https://user:password@host): all of it, the host kept.
    _Rule(
        re.compile(r"://[^\s/?#@:\"'<>]{1,256}:[^\s/?#@\"'<>]{1,256}(?=@)"),
        ("://",),
        replacement=f"://{REDACTED}",
    ),
)
# The triggers of all rules, for the common verdict "no rule is triggered" in one
# tight loop (a method call per rule costs more than the scans on short strings).
_PLAIN_TRIGGERS = tuple(
    dict.fromkeys(
        t for rule in _RULES if not rule.folded for t in rule.triggers if isinstance(t, str)
    )
)
# Each pattern trigger with its literal prefix, a substring test that costs far
# less than the pattern's search on the many short strings of a payload.
_PATTERN_TRIGGERS = tuple(
    (re.match(r"\w+", t.pattern).group(), t)
    for rule in _RULES
    if not rule.folded
    for t in rule.triggers
    if not isinstance(t, str)
)
_FOLDED_TRIGGERS = tuple(t for rule in _RULES if rule.folded for t in rule.triggers)
# Every pattern of rule 3 in one expression: to check that a text holds none
# (far slower than the rules one by one).
API_KEY_RE = re.compile("|".join(f"(?:{rule.pattern.pattern})" for rule in _RULES))

# A query parameter (after ? & or ;) and its value, up to the next separator.
_QUERY_PARAM_RE = re.compile(r"(?<=[?&;])([A-Za-z][\w.\-\[\]]{0,63})=([^&;#\s\"'<>\\]+)")
# A parameter name that rule 2 finds sensitive contains one of these (lower case).
_QUERY_TRIGGERS = ("key", "token", "secret", "pass", "pwd", "auth", "cred", "sig", "session")
_QUERY_TRIGGERS += ("cookie", "bearer")

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
        # A session cookie (Django's sessionid): whoever holds one is logged in.
        # Written in two segments too: session_id, sessionId.
        "sessionid",
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
    if "".join(segments) in COMPOUND_SENSITIVE_NAMES or any(
        first + second in COMPOUND_SENSITIVE_NAMES
        for first, second in itertools.pairwise(segments)  # client_session_id
    ):
        return "always"
    if not SENSITIVE_SEGMENTS.intersection(segments):
        return "never"
    return "unless-number" if COUNTER_SEGMENTS.intersection(segments) else "always"


def is_sensitive_name(name: str, value: Any = None) -> bool:
    verdict = _name_verdict(name)
    if verdict != "unless-number":
        return verdict == "always"
    return not (isinstance(value, int | float) and not isinstance(value, bool))


def _may_hold_query_credential(text: str, lowered: str) -> bool:
    if "=" not in text or ("?" not in text and "&" not in text and ";" not in text):
        return False
    for trigger in _QUERY_TRIGGERS:  # noqa: SIM110 (a loop: no generator to set up per string)
        if trigger in lowered:
            return True
    return False


def may_hold_key(text: str) -> bool:
    """Whether the patterns of rules 3 and 4 could match anywhere in ``text``.

    Most strings (prompts, answers) hold no credential at all: a few substring
    tests in C rule that out far faster than running the patterns over them.
    """
    lowered = text.lower()
    return _rule_three_triggered(text, lowered) or _may_hold_query_credential(text, lowered)


# Where rule 4 could find a parameter in some string of a JSON text: the name as
# _QUERY_PARAM_RE reads it and its "=", the value left out. None of ? & ; = and
# the name's characters is escaped in JSON, so each match of _QUERY_PARAM_RE in a
# string is a match of this in the text. A backslash is taken into the name (an
# escape where a dumps escaped non-ASCII), and the name may run longer, so that
# such a name is never cut short: it is then judged sensitive unseen.
_QUERY_NAME_IN_JSON_RE = re.compile(r"[?&;]([A-Za-z][\w.\-\[\]\\]{0,800})=")


# Every trigger of rule 3 holds a three-character sequence of one of these rows:
# a character of the first set, then one of the second, then one of the third.
# Each row is a bit of _trigram_hit's planes. (tests/logs/ingest/test_redaction.py
# checks that each trigger, and each text its pattern matches, has one.)
_TRIGRAMS = (
    ("-:", "-/", "-/"),  # -----, ://
    ("srh", "kfpousr", "-_"),  # sk- sk_ rk_ hf_, gh[pousr]_
    ("bk", "_.", "pc"),  # github_pat_ (b_p), hooks.slack.com (k.c)
    ("adfrbtnl", "tx", "-"),  # gl(pat|dt|ft|rt|soat|cbt|ptt|agent)- (at- dt- … nt-), pplx-
    ("eA", "yKS3BCI", "JITCz"),  # eyJ; AKIA ASIA A3T ABIA ACCA AIza
    ("Bx", "aAo", "sSxp"),  # Basic BASIC; xox xapp-
    ("bB", "eE", "aA"),  # bearer, in any letter case
)


def _trigram_plane(position: int) -> bytes:
    table = bytearray(256)
    for bit, row in enumerate(_TRIGRAMS):
        for character in row[position]:
            table[ord(character)] |= 1 << bit
    return bytes(table)


_FIRST, _SECOND, _THIRD = (_trigram_plane(position) for position in range(3))


def _trigram_hit(text: str) -> bool:
    """Whether ``text`` holds a sequence of a row of _TRIGRAMS: if not, no trigger of
    rule 3 is in it.

    The substring searches of ``may_hold_key`` each read the whole text (~2 GB/s);
    a part's JSON text is most of a record, and with 25 of them they were the
    largest cost of ingest. Here the text is read a few times in all: each byte
    becomes the bits of the rows whose first (second, third) set holds it, and
    integers made of those bytes, shifted by one and two bytes, are ANDed — at C
    speed. Every trigger is ASCII, so its bytes are the same in UTF-8.
    """
    data = text.encode("utf-8", "surrogatepass")
    first = int.from_bytes(data.translate(_FIRST), "little")
    hit = first & (int.from_bytes(data.translate(_SECOND), "little") >> 8)
    return bool(hit and hit & (int.from_bytes(data.translate(_THIRD), "little") >> 16))


def _rule_three_triggered(text: str, lowered: str | None = None) -> bool:
    """Whether a trigger of rule 3 is in ``text`` (``lowered`` is ``text.lower()``)."""
    for trigger in _PLAIN_TRIGGERS:
        if trigger in text:
            return True
    for prefix, pattern in _PATTERN_TRIGGERS:
        if prefix in text and pattern.search(text):
            return True
    if lowered is None:
        lowered = text.lower()
    for trigger in _FOLDED_TRIGGERS:  # noqa: SIM110 (as _may_hold_query_credential)
        if trigger in lowered:
            return True
    return False


def json_may_hold_key(text: str) -> bool:
    """``may_hold_key`` for the JSON text of a whole part, at once for all its strings.

    Rule 3's triggers are first ruled out by ``_trigram_hit``. Prompts and answers
    often hold ``?``, ``&`` or ``;``, an ``=`` and a word such as "token" or "key"
    somewhere, which sends a text through rule 4's coarse test
    (``_may_hold_query_credential``) and the part through ``redact``, a walk over
    every string of it, though no parameter with a sensitive name is there. Here
    each parameter name of the text is judged instead: only one that rule 2 could
    find sensitive (counters too) makes the part redacted string by string.
    """
    if _trigram_hit(text) and _rule_three_triggered(text):
        return True
    if "=" not in text or ("?" not in text and "&" not in text and ";" not in text):
        return False
    # The words of rule 4's coarse test can hide in escapes (a writer escaping
    # non-ASCII: the Kelvin sign of "x-api-\u212aey" is lower-cased to k).
    if "\\u" not in text and not _may_hold_query_credential(text, text.lower()):
        return False
    for match in _QUERY_NAME_IN_JSON_RE.finditer(text):
        name = match.group(1)
        if "\\" in name or _name_verdict(name) != "never":
            return True
    return False


def _redact_param(match: re.Match) -> str:
    name, value = match.group(1), match.group(2)
    try:
        number: Any = float(value)
    except ValueError:
        number = value
    return f"{name}={REDACTED}" if is_sensitive_name(name, number) else match.group(0)


def redact_text(text: str) -> str:
    if not may_hold_key(text):
        return text
    lowered = text.lower()
    for rule in _RULES:
        if rule.triggered_by(lowered if rule.folded else text):
            redacted = rule.pattern.sub(rule.replacement, text)
            if redacted is not text:
                text, lowered = redacted, redacted.lower()
    if _may_hold_query_credential(text, lowered):
        text = _QUERY_PARAM_RE.sub(_redact_param, text)
    return text


@functools.lru_cache(maxsize=8192)
def redact_field(text: str) -> str:
    """``redact_text``, remembered, for short strings that recur: a call's model,
    endpoint and error reason, and in payloads the keys and values such as
    "role", "user" or "assistant" (a lookup costs a fraction of the scans)."""
    return redact_text(text)


# Strings up to this long go through redact_field.
SHORT = 64


@functools.lru_cache(maxsize=1024)
def redact_upstream(text: str) -> str:
    """``redact_text`` for an upstream, which may be a connection string without a
    scheme (``user:password@host``): the part before the ``@`` goes too."""
    head, at, host = text.partition("@")
    if at and ":" in head and "://" not in head and not any(c.isspace() for c in head):
        text = REDACTED + at + host
    return redact_text(text)


def looks_like_credential(text: str) -> bool:
    """Whether rules 3 and 4 would change ``text``: for fields that must not hold a
    credential at all (an identity, which redaction would blur)."""
    return redact_field(text) != text


def redact(value: Any) -> Any:
    """A copy of a JSON-like value with every credential replaced by ``[REDACTED]``."""
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for raw_key, item in value.items():
            name = str(raw_key)
            key = redact_field(name) if len(name) <= SHORT else redact_text(name)
            while key in result:  # two keys redacted to the same text: keep both
                key += "_"
            result[key] = REDACTED if is_sensitive_name(name, item) else redact(item)
        return result
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_field(value) if len(value) <= SHORT else redact_text(value)
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
    # Names first: a part with a sensitive name (the headers' Authorization,
    # nearly always) is decided without scanning its text.
    if text is not None and not names_need_redaction(value) and not json_may_hold_key(text):
        return value, text
    redacted = redact(value)
    return redacted, dumps(redacted)
