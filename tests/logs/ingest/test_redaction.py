"""Credential redaction: examples, then properties over arbitrary JSON.

The rules (logs/ingest/redaction.py, docs/ingest-format.md): header-style names are
always redacted; a value is redacted when its key has a sensitive segment
(key, token, secret, password, auth, credential, …) unless it is a number
under a counting word; strings that look like API keys or bearer tokens are
replaced wherever they appear.
"""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logs.ingest.redaction import (
    REDACTED,
    json_may_hold_key,
    names_need_redaction,
    redact,
    redact_json,
    redact_text,
)

# Realistic-looking credentials (all made up).
OPENAI_KEY = "sk-" + "Ab3dE5gH7jK9mN1pQ3rS5tU7vW9xY1zA3bC5dE7fG9hJ"
PROJECT_KEY = "sk-proj-" + "Zx9_Yw8-Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa9876543210"
ANTHROPIC_KEY = "sk-ant-api03-" + "q1W2e3R4t5Y6u7I8o9P0a1S2d3F4g5H6j7K8l9"
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
GOOGLE_KEY = "AIza" + "SyD3Fk9xQ2mP7vL4nR8tW1yB6cJ0hZ5sE3u"
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
SLACK_TOKEN = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOp"
HF_TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz012345"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
BEARER_TOKEN = "tok_9f8e7d6c5b4a3928"
GITLAB_TOKEN = "glpat-" + "Xy9_zW8-vU7tS6rQ5pO4"
STRIPE_KEY = "sk_live_" + "51HxYzAbCdEfGhIjKlMn"
PERPLEXITY_KEY = "pplx-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0u1V2w3X4"
AWS_SESSION_KEY_ID = "ASIA" + "Y34FZKBOKMUTVV7A"
SLACK_WEBHOOK = "hooks.slack.com/services/" + "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"
PEM_BLOCK = (
    "-----BEGIN PRIVATE KEY-----\n"
    + "\n".join([PEM_BODY] * 3)
    + "\nMgIt5gZxQ==\n-----END PRIVATE KEY-----"
)
# A value that matches no key pattern: only its place (a URL's password, a query
# parameter's name, a header's name) says it is a credential.
OPAQUE = "Opaque-Passw0rd-77"

LOOKALIKES = [OPENAI_KEY, PROJECT_KEY, ANTHROPIC_KEY, AWS_KEY_ID, GOOGLE_KEY, GITHUB_TOKEN]
LOOKALIKES += [SLACK_TOKEN, HF_TOKEN, JWT]
LOOKALIKES += [GITLAB_TOKEN, STRIPE_KEY, PERPLEXITY_KEY, AWS_SESSION_KEY_ID, SLACK_WEBHOOK]


def dumped(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# --- headers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "authorization",
        "AUTHORIZATION",
        "Authorisation",
        "AUTHORISATION",
        "Proxy-Authorization",
        "Proxy-Authorisation",
        "x-api-key",
        "X-Api-Key",
        "X-API-KEY",
        "api-key",
        "Api-Key",
        "x-goog-api-key",
        "Cookie",
        "cookie",
        "Set-Cookie",
        "x-auth-token",
    ],
)
def test_credential_headers_are_redacted_whatever_their_case(name):
    # A value that looks like nothing in particular: only the header name can catch it.
    headers = {name: "opaque-credential-value", "User-Agent": "openai-python/1.54"}

    result = redact(headers)

    assert result == {name: REDACTED, "User-Agent": "openai-python/1.54"}


def test_basic_and_bearer_authorization_are_redacted():
    headers = {"Authorization": "Basic dXNlcjpodW50ZXIy", "Proxy-Authorization": "Bearer x"}

    assert redact(headers) == {"Authorization": REDACTED, "Proxy-Authorization": REDACTED}


def test_ordinary_headers_survive():
    headers = {"Content-Type": "application/json", "Accept": "*/*", "X-Request-Id": "req_1"}

    assert redact(headers) == headers


# --- sensitive key names at any depth -----------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "apiKey",
        "api_key",
        "API_KEY",
        "OPENAI_API_KEY",
        "api-key",
        "key",
        "access_token",
        "accessToken",
        "refresh_token",
        "id_token",
        "client_secret",
        "clientSecret",
        "secret",
        "password",
        "Password",
        "db_password",
        "passwd",
        "auth",
        "basic_auth",
        "credentials",
        "credential",
        "privateKey",
        "private_key",
        "awsSecretAccessKey",
        "session-token",
        "passphrase",
        "signature",
        "sessionid",
        "session_id",
        "sessionId",
        "PHPSESSID",
        "JSESSIONID",
        "pass",
        "db_pass",
        "passcode",
        "userPasscode",
        "creds",
        "sig",
    ],
)
def test_values_under_sensitive_names_are_redacted(name):
    value = {name: "hunter2-not-a-key-pattern"}

    assert redact(value) == {name: REDACTED}


def test_a_nested_key_is_redacted_at_any_depth():
    value = {
        "config": {"openai": {"apiKey": "abc123", "organization": "org-1"}},
        "tools": [{"name": "search", "auth": {"type": "oauth", "token": "t0k3n"}}],
        "deep": [[[{"client_secret": "s"}]]],
    }

    result = redact(value)

    assert result == {
        "config": {"openai": {"apiKey": REDACTED, "organization": "org-1"}},
        "tools": [{"name": "search", "auth": REDACTED}],
        "deep": [[[{"client_secret": REDACTED}]]],
    }


def test_a_whole_structure_under_a_sensitive_name_is_redacted():
    value = {"credentials": {"user": "bob", "password": "p", "extra": ["x"]}}

    assert redact(value) == {"credentials": REDACTED}


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("max_tokens", 512),
        ("max_completion_tokens", 1024),
        ("prompt_tokens", 812),
        ("completion_tokens", 143),
        ("total_tokens", 955),
        ("token_count", 12),
        ("max_token_count", 4096),
        ("num_tokens", 7),
        ("tokenLimit", 8000),
        ("max_keys", 3),
        ("token_count", 0.5),
    ],
)
def test_counters_survive(name, count):
    value = {"usage": {name: count}, "params": [{name: count}]}

    assert redact(value) == value


def test_a_string_under_a_counting_name_with_a_sensitive_word_is_still_redacted():
    # Only numbers are counts: a string there could be anything.
    assert redact({"token_count": "abc"}) == {"token_count": REDACTED}
    assert redact({"token": 12}) == {"token": REDACTED}


@pytest.mark.parametrize(
    "name",
    [
        *("monkey", "keyboard", "tokenizer", "author", "authority", "secretary", "model"),
        *("passage", "compass", "bypass", "session", "signal", "design", "sigma"),
    ],
)
def test_names_that_merely_contain_a_sensitive_word_survive(name):
    value = {name: "plain value"}

    assert redact(value) == value


# --- key-looking strings in free text ------------------------------------------------


@pytest.mark.parametrize("secret", LOOKALIKES)
def test_a_key_looking_string_is_redacted_inside_free_text(secret):
    text = f"Here is my key: {secret}. Please do not share it."

    result = redact_text(text)

    assert secret not in result
    assert result == f"Here is my key: {REDACTED}. Please do not share it."


@pytest.mark.parametrize("secret", LOOKALIKES)
@pytest.mark.parametrize(
    "template", ["{s}", "({s})", '"{s}"', "key={s}&x=1", "line1\n{s}\nline3", "<{s}>", "'{s}',"]
)
def test_a_key_looking_string_is_redacted_whatever_surrounds_it(secret, template):
    assert secret not in redact_text(template.format(s=secret))


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_a_bearer_token_is_redacted_in_text(scheme):
    text = f"curl -H 'Authorization: {scheme} {BEARER_TOKEN}' https://api.example.com"

    result = redact_text(text)

    assert BEARER_TOKEN not in result
    assert result.startswith("curl -H 'Authorization: ")
    assert result.endswith("' https://api.example.com")


@pytest.mark.parametrize("secret", [OPENAI_KEY, PROJECT_KEY, GITHUB_TOKEN])
def test_a_key_in_a_percent_encoded_url_is_redacted(secret):
    # A URL inside a prompt or a redirect parameter: "=" is "%3D", '"' is "%22".
    text = (
        f"https://example.com/cb?next=%2Fapi%3Fkey%3D{secret}&json=%7B%22k%22%3A%22{secret}%22%7D"
    )

    assert secret not in redact_text(text)


def test_key_looking_strings_are_redacted_in_nested_values_and_in_keys():
    value = {
        "messages": [{"role": "user", "content": f"use {OPENAI_KEY} and {AWS_KEY_ID}"}],
        OPENAI_KEY: "a key used as a name",
        "n": 3,
    }

    result = dumped(redact(value))

    assert OPENAI_KEY not in result
    assert AWS_KEY_ID not in result
    assert "a key used as a name" in result


def test_ordinary_text_survives():
    text = "sk- is a prefix; task-force meeting at 10; Bearer of good news; AKIA; eyJ."

    assert redact_text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "I forgot my password, how do I reset it? The pass rate was 80%.",
        "Set the key=value pairs in the config; tokens=512 & temperature=0.2",
        "See https://example.com/docs?page=2&lang=en#auth for the auth guide",
        "Write to bob@example.com or visit https://example.com:8443/path",
        "A basic understanding of PRIVATE KEY handling; BEGIN and END markers",
        "Bearer bonds were common in the 1920s. BEARER BONDS ARE RARE NOW.",
        "mailto:someone@example.com",
        "Asia and Africa; the session was long; a signature on the letter",
        "postgres://db.internal:5432/app and redis://cache:6379/0",
        "https://example.com/search?q=password+reset&max_tokens=12&token_count=3",
    ],
)
def test_prose_about_credentials_survives(text):
    """Words such as password, key, auth, Bearer, BEGIN ... PRIVATE KEY and URLs
    without a password are not credentials."""
    assert redact_text(text) == text


# --- each credential the hardening review found surviving -----------------------------------


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        (f"curl -H 'Authorization: BEARER {BEARER_TOKEN}' https://api", BEARER_TOKEN, "curl -H"),
        (f"auth header was bEaReR {BEARER_TOKEN}", BEARER_TOKEN, "auth header was "),
        (f"https://x.test/cb?h=Authorization%3A%20Bearer%20{BEARER_TOKEN}", BEARER_TOKEN, "x.test"),
        (f"header=Bearer+{BEARER_TOKEN}&next=1", BEARER_TOKEN, "&next=1"),
        (f"Here is our key:\n{PEM_BLOCK}\nthanks", PEM_BODY, "thanks"),
        (f"cut short: {PEM_BLOCK[:150]}", PEM_BODY[:40], "cut short: "),
        (f"connect to postgres://svc:{OPAQUE}@db.internal:5432/app", OPAQUE, "@db.internal"),
        (f"GET https://api.test/v1/models?api_key={OPAQUE}&limit=5", OPAQUE, "&limit=5"),
        (f"/v1/chat/completions?foo=1&access_token={OPAQUE}", OPAQUE, "?foo=1&"),
        (f"https://blob.test/f.txt?sv=2022&sig={OPAQUE}", OPAQUE, "?sv=2022&"),
        (f"wss://relay.test/socket?sessionid={OPAQUE}", OPAQUE, "wss://relay.test"),
        (f"login.php?user=bob&pass={OPAQUE}", OPAQUE, "user=bob"),
        (f"verify?passcode={OPAQUE}", OPAQUE, "verify?"),
    ],
)
def test_credentials_found_in_review_are_redacted(text, secret, kept):
    result = redact_text(text)

    assert secret not in result
    assert kept in result
    assert REDACTED in result
    assert redact_text(result) == result


def test_non_string_leaves_survive():
    value = {"n": 1, "f": 0.5, "b": True, "none": None, "list": [1, "a", False]}

    assert redact(value) == value


def test_redact_does_not_change_its_argument():
    value = {"Authorization": "Bearer x", "body": {"api_key": "k", "text": OPENAI_KEY}}
    copy = json.loads(json.dumps(value))

    redact(value)

    assert value == copy


def test_two_keys_redacted_to_the_same_text_are_both_kept():
    value = {OPENAI_KEY: 1, PROJECT_KEY: 2}

    result = redact(value)

    assert sorted(result.values()) == [1, 2]
    assert OPENAI_KEY not in dumped(result) and PROJECT_KEY not in dumped(result)


# --- properties -----------------------------------------------------------------------
#
# Filler (everything that is not a planted secret) is drawn from an alphabet
# without upper-case letters, "-" or "_", so it can neither contain a planted
# secret nor look like a key; keys of filler objects are lower-case words that
# are not sensitive names.

FILLER_ALPHABET = string.ascii_lowercase + string.digits + " .,;:!?()/'éü中文🙂"
SEPARATORS = [" ", "\n", "\t", ", ", ": ", "=", "(", ")", '"', "'", "<", ">", "&", "/", "|"]
SENSITIVE_WORDS = {
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
    "accesstoken",
    "secretkey",
    "privatekey",
    "xapikey",
    # Compound names written as one word are sensitive too (a random benign
    # name once came out as "authtoken").
    "authtoken",
    "refreshtoken",
    "idtoken",
    "sessiontoken",
    "bearertoken",
    "clientsecret",
    "apisecret",
    "secretaccesskey",
    "authorisation",
    "pass",
    "passwords",
    "passcode",
    "creds",
    "sig",
    "sessionid",
    "sessid",
    "phpsessid",
    "jsessionid",
}

filler_text = st.text(alphabet=FILLER_ALPHABET, max_size=30).filter(
    lambda s: "bearer" not in s.lower()
)
benign_names = st.one_of(
    st.sampled_from(
        [
            *("model", "messages", "role", "content", "temperature", "max_tokens"),
            *("prompt_tokens", "monkey", "keyboard", "tokenizer", "author", "user", "choices"),
        ]
    ),
    st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=10).filter(
        lambda s: s not in SENSITIVE_WORDS
    ),
)
plain_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    filler_text,
)


def alnum(min_size: int, max_size: int, extra: str = "") -> st.SearchStrategy[str]:
    return st.text(
        alphabet=string.ascii_letters + string.digits + extra, min_size=min_size, max_size=max_size
    )


def upper_start(tail: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Starts with two upper-case letters, which filler never has."""
    head = st.text(string.ascii_uppercase, min_size=2, max_size=2)
    return st.builds(lambda a, b: a + b, head, tail)


# (text to plant, the secret in it)
key_lookalikes: st.SearchStrategy[tuple[str, str]] = st.one_of(
    alnum(20, 48).map(lambda s: "sk-" + s),
    alnum(20, 60, "_-").map(lambda s: "sk-proj-" + s),
    alnum(20, 60, "_-").map(lambda s: "sk-ant-api03-" + s),
    st.text(string.ascii_uppercase + string.digits, min_size=16, max_size=16).map(
        lambda s: "AKIA" + s
    ),
    alnum(35, 35, "_-").map(lambda s: "AIza" + s),
    st.builds(lambda p, s: p + s, st.sampled_from(["ghp_", "gho_", "ghs_"]), alnum(36, 40)),
    alnum(10, 40, "-").map(lambda s: "xoxb-" + s),
    alnum(30, 40).map(lambda s: "hf_" + s),
    st.tuples(alnum(8, 30, "_-"), alnum(8, 40, "_-"), alnum(8, 40, "_-")).map(
        lambda parts: "eyJ" + ".".join(parts)
    ),
).map(lambda secret: (secret, secret))
bearer_tokens = st.tuples(
    st.sampled_from(["Bearer", "bearer"]),
    st.sampled_from([" ", "  ", "\t"]),
    upper_start(alnum(10, 40, "-._~+/")),
    st.sampled_from(["", "=", "=="]),
).map(lambda t: (t[0] + t[1] + t[2] + t[3], t[2]))


def _random_case_of(word: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda flips: _random_case(word, flips)
    )


# Bearer in any letter case, also URL- or form-encoded (Bearer%20…, Bearer+…).
any_case_bearer_tokens = st.tuples(
    _random_case_of("bearer"),
    st.sampled_from([" ", "%20", "+", "%20%20"]),
    upper_start(alnum(10, 40, "-._~")),
).map(lambda t: (t[0] + t[1] + t[2], t[2]))
# PEM private-key blocks, whole or cut short.
pem_blocks = st.tuples(
    st.sampled_from(["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "]),
    st.lists(upper_start(alnum(40, 64, "+/")), min_size=1, max_size=4),
    st.booleans(),
).map(
    lambda t: (
        f"-----BEGIN {t[0]}PRIVATE KEY-----\n"
        + "\n".join(t[1])
        + (f"\n-----END {t[0]}PRIVATE KEY-----" if t[2] else ""),
        t[1][0],
    )
)
# The password of a URL.
url_passwords = st.tuples(
    st.sampled_from(["https", "postgres", "redis", "amqp", "wss"]),
    st.text(string.ascii_lowercase, min_size=1, max_size=8),
    upper_start(alnum(6, 24, "-._~!$*")),
    st.sampled_from(["db.internal", "relay.example.com:8443", "10.0.0.5"]),
).map(lambda t: (f"{t[0]}://{t[1]}:{t[2]}@{t[3]}/x", t[2]))
# A query parameter with a sensitive name.
query_credentials = st.tuples(
    st.sampled_from(["/v1/chat/completions", "https://api.example.com/v1/models", "cb"]),
    st.sampled_from(["?", "?foo=1&", "?a=b;"]),
    st.sampled_from(
        [
            *("api_key", "apikey", "key", "access_token", "token", "sig", "signature"),
            *("password", "pass", "passcode", "sessionid", "client_secret", "X-Amz-Credential"),
        ]
    ),
    upper_start(alnum(6, 30, "-._~")),
).map(lambda t: (f"{t[0]}{t[1]}{t[2]}={t[3]}", t[3]))
more_key_lookalikes = st.one_of(
    alnum(20, 30, "_-").map(lambda s: "glpat-" + s),
    alnum(10, 40).map(lambda s: "sk_live_" + s),
    alnum(10, 40).map(lambda s: "rk_test_" + s),
    alnum(48, 48).map(lambda s: "pplx-" + s),
    st.text(string.ascii_uppercase + string.digits, min_size=16, max_size=16).map(
        lambda s: "ASIA" + s
    ),
).map(lambda secret: (secret, secret))
# A Slack webhook: the URL's path is the secret (the scheme and host may stay).
slack_webhooks = upper_start(alnum(24, 40, "/")).map(
    lambda s: ("https://hooks.slack.com/services/T0/" + s, s)
)
secret_in_text = st.one_of(
    key_lookalikes,
    bearer_tokens,
    any_case_bearer_tokens,
    pem_blocks,
    url_passwords,
    query_credentials,
    more_key_lookalikes,
    slack_webhooks,
)


@st.composite
def text_with_secrets(draw) -> tuple[str, list[str]]:
    pieces, secrets = [draw(filler_text)], []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        planted, secret = draw(secret_in_text)
        pieces += [draw(st.sampled_from(SEPARATORS)), planted, draw(st.sampled_from(SEPARATORS))]
        pieces.append(draw(filler_text))
        secrets.append(secret)
    return "".join(pieces), secrets


def _styled(prefix: str, word: str, style: str) -> str:
    if style == "snake":
        return f"{prefix}_{word}"
    if style == "kebab":
        return f"{prefix}-{word}"
    if style == "camel":
        return prefix + word.capitalize()
    if style == "upper":
        return f"{prefix}_{word}".upper()
    return f"{prefix}.{word}"


def _random_case(text: str, flips: list[bool]) -> str:
    return "".join(c.upper() if flip else c.lower() for c, flip in zip(text, flips, strict=False))


sensitive_names = st.one_of(
    st.builds(
        _styled,
        st.sampled_from(["client", "api", "access", "db", "aws", "openai", "session", "my", "x"]),
        st.sampled_from(
            [
                *("key", "token", "secret", "password", "auth", "credentials", "apikey"),
                *("pass", "passcode", "sessionid", "session_id"),
            ]
        ),
        st.sampled_from(["snake", "kebab", "camel", "upper", "dotted"]),
    ),
    st.sampled_from(sorted(SENSITIVE_WORDS - {"keys", "secrets", "cookies"})),
    # Header names, in any case.
    st.builds(
        _random_case,
        st.sampled_from(
            ["authorization", "authorisation", "x-api-key", "api-key", "cookie", "set-cookie"]
        ),
        st.lists(st.booleans(), min_size=20, max_size=20),
    ),
)
# A value a credential field might hold: plain text that matches no key pattern.
plain_secrets = st.text(
    string.ascii_letters + string.digits + "!@#$%^&*", min_size=6, max_size=30
).map(lambda body: "PW!" + body)


@st.composite
def value_under_sensitive_name(draw) -> tuple[Any, list[str]]:
    secret = draw(plain_secrets)
    shape = draw(st.sampled_from(["bare", "list", "object", "nested"]))
    if shape == "bare":
        return secret, [secret]
    if shape == "list":
        return [draw(filler_text), secret], [secret]
    if shape == "object":
        return {draw(benign_names): secret}, [secret]
    return {"outer": [{"inner": secret}]}, [secret]


Planted = tuple[Any, list[str]]

leaves: st.SearchStrategy[Planted] = st.one_of(
    plain_leaves.map(lambda v: (v, [])), text_with_secrets()
)


def _list_of(children: list[Planted]) -> Planted:
    return [v for v, _ in children], [s for _, secrets in children for s in secrets]


def _object_of(entries: list[tuple[str, Planted]], sensitive: list[tuple[str, Planted]]) -> Planted:
    value, secrets = {}, []
    for name, (child, child_secrets) in [*entries, *sensitive]:
        value[name] = child
        secrets += child_secrets
    return value, secrets


def _extend(children: st.SearchStrategy[Planted]) -> st.SearchStrategy[Planted]:
    return st.one_of(
        st.lists(children, max_size=4).map(_list_of),
        st.builds(
            _object_of,
            st.lists(st.tuples(benign_names, children), max_size=4),
            st.lists(st.tuples(sensitive_names, value_under_sensitive_name()), max_size=2),
        ),
    )


planted_trees = st.recursive(leaves, _extend, max_leaves=12)


@st.composite
def trees_with_secrets(draw) -> Planted:
    """A random tree with at least one planted secret somewhere in it."""
    tree, secrets = draw(planted_trees)
    extra, extra_secrets = draw(
        st.one_of(
            text_with_secrets(),
            st.tuples(sensitive_names, value_under_sensitive_name()).map(
                lambda t: ({t[0]: t[1][0]}, t[1][1])
            ),
        )
    )
    if isinstance(tree, dict):
        tree = {**tree, "zz_planted": extra}
    elif isinstance(tree, list):
        position = draw(st.integers(min_value=0, max_value=len(tree)))
        tree = [*tree[:position], extra, *tree[position:]]
    else:
        tree = [tree, extra]
    return tree, secrets + extra_secrets


def _no_secrets(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4), st.dictionaries(benign_names, children, max_size=4)
    )


clean_trees = st.recursive(plain_leaves, _no_secrets, max_leaves=20)

COUNTER_NAMES = [
    "max_tokens",
    "max_completion_tokens",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "token_count",
    "max_token_count",
    "num_tokens",
    "tokenLimit",
]

PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(trees_with_secrets())
def test_no_planted_secret_survives(planted):
    tree, secrets = planted
    assert secrets

    result = dumped(redact(tree))

    for secret in secrets:
        assert secret not in result


@PROPERTY_SETTINGS
@given(trees_with_secrets())
def test_redaction_is_idempotent(planted):
    tree, _ = planted
    once = redact(tree)

    assert redact(once) == once


@PROPERTY_SETTINGS
@given(clean_trees)
def test_values_without_secrets_come_back_unchanged(tree):
    assert redact(tree) == tree


@settings(PROPERTY_SETTINGS, max_examples=100)
@given(
    st.dictionaries(
        st.sampled_from(COUNTER_NAMES), st.integers(min_value=0, max_value=2**31), min_size=1
    ),
    planted_trees,
)
def test_counters_survive_beside_anything(counters, planted):
    tree, _ = planted
    value = {"usage": counters, "other": tree, "params": {"nested": [counters]}}

    result = redact(value)

    assert result["usage"] == counters
    assert result["params"] == {"nested": [counters]}


# --- the ingest service's fast path (redact_json) ---------------------------------------
#
# Ingest encodes each part once and keeps that text when redaction would change
# nothing; redact_json must always give what redact() and an encoding of its
# result give.

_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def assert_fast_path_matches(tree: Any) -> None:
    expected = redact(tree)
    try:
        text = _encode(tree)
    except (TypeError, ValueError):
        text = None
    value, stored = redact_json(tree, text, _encode)
    assert value == expected
    assert stored == _encode(expected)


@PROPERTY_SETTINGS
@given(st.one_of(planted_trees.map(lambda planted: planted[0]), clean_trees))
def test_the_fast_path_stores_what_redact_gives(tree):
    assert_fast_path_matches(tree)


@PROPERTY_SETTINGS
@given(trees_with_secrets().map(lambda planted: planted[0]))
def test_the_fast_path_stores_what_redact_gives_with_secrets(tree):
    assert_fast_path_matches(tree)


@pytest.mark.parametrize(
    "tree",
    [
        {"max_tokens": 12, "token_count": 3, "tokenLimit": 1.5},
        {"token_count": True},
        {"token_count": "12"},
        {"privatek_ey": "x"},
        {"ApiKey": {"nested": 1}},
        {1: "a", None: "b", False: "c", 2.5: "d"},
        {"list": (1, 2, {"password": "p"})},
        {"text": "see sk-" + "A" * 20},
        {"sk-" + "B" * 20: 1},
        {"clean": ["a", {"b": [None, 1.5, False]}]},
        [],
        "plain",
        "Bearer abcdefghijklmnop",
        12,
        {"text": f"BEARER {BEARER_TOKEN}", "url": f"x?api_key={OPAQUE}"},
        {"pem": PEM_BLOCK, "dsn": f"redis://u:{OPAQUE}@cache:6379"},
        {"Authorisation": "opaque", "sessionid": "abc", "pass": "x", "passcode": 1234},
        [f"Bearer%20{BEARER_TOKEN}", "https://example.com/?page=2&lang=en"],
    ],
)
def test_the_fast_path_matches_redact_on_edge_cases(tree):
    assert_fast_path_matches(tree)


def test_the_fast_path_returns_a_clean_value_itself():
    tree = {"messages": [{"role": "user", "content": "hello"}], "temperature": 0.2}
    text = _encode(tree)

    value, stored = redact_json(tree, text, _encode)

    assert value is tree
    assert stored is text


# --- a whole part's JSON text judged at once (json_may_hold_key) ------------------------
#
# Prose often holds ?, & or ;, an = and a word such as "token" somewhere; the part is
# then judged by the names of its query parameters, from its JSON text. Whatever the
# text says "no" to, redact() leaves as it is.

# Parameter names: sensitive, counters, look-alikes, spelt across separators, with
# characters JSON escapes or a writer may escape (non-ASCII, the Kelvin sign).
param_names = st.one_of(
    st.sampled_from(
        [
            *("page", "lang", "q", "max_tokens", "token_count", "tokens", "monkey", "author"),
            *("api_key", "apiKey", "token", "sig", "sessionid", "s-e-s-s-i-o-n-i-d", "a.p.i.k.e.y"),
            *("token\u00e4", "api\u00e4key", "x-api-\u212aey", "pass\nword", 'se"ssid', "k\\ey"),
            *("X-Amz-Credential", "client[secret]", "auth\x01x", "key" + "x" * 70),
        ]
    ),
    st.text(alphabet='akeytonsp_-.\u00e4\u212a[]\\"\n\x01', min_size=1, max_size=12),
)
param_values = st.one_of(
    st.sampled_from(["1", "12.5", "-3", "abc", "\x01x", '"q"', "", "a&b", "x;y"]),
    st.text(alphabet='ab1.-\\"\n\x01', max_size=6),
)
query_lookalikes = st.builds(
    lambda before, name, equals, value: f"{before}{name}{equals}{value}",
    st.sampled_from(["?", "&", ";", " ", "", '"?', "?\n", "a?"]),
    param_names,
    st.sampled_from(["=", "==", ""]),
    param_values,
)
texts_with_params = st.lists(st.one_of(query_lookalikes, filler_text), min_size=1, max_size=5).map(
    "".join
)
trees_with_params = st.recursive(
    st.one_of(texts_with_params, plain_leaves),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.one_of(texts_with_params, benign_names), children, max_size=3),
    ),
    max_leaves=8,
)
_ascii_encode = json.JSONEncoder(ensure_ascii=True, allow_nan=False).encode


@PROPERTY_SETTINGS
@given(trees_with_params)
def test_a_json_text_without_a_hint_has_nothing_to_redact(tree):
    from logs.ingest.payloads import _part_json

    for dumps in (_part_json, _encode, _ascii_encode):
        text = dumps(tree)
        if not names_need_redaction(tree) and not json_may_hold_key(text):
            assert redact(tree) == tree, dumps
        assert_fast_path_matches(tree)


@pytest.mark.parametrize(
    "tree",
    [
        {"content": "Why does GET /v1/items?max_tokens=5&page=2 fail? The token count is off."},
        ["a=1; b=2", "what is a key?", {"q": "cats & dogs", "n": 3}],
        {"content": "if (x?.y && z) { tokens = 3; }"},
    ],
)
def test_prose_with_query_like_text_is_stored_as_sent_without_a_second_look(tree):
    text = _encode(tree)

    value, stored = redact_json(tree, text, _encode)

    assert value is tree
    assert stored is text


@pytest.mark.parametrize(
    "text",
    [
        "see /v1/x?page=2&api_key=Opaque-Passw0rd",
        "cb;sig=abcdef",
        "x?token\u00e4=abc",
        "x?api\u00e4key=abc",
        "x?token_count=3",  # a counter: redacted unless the value is a number
    ],
)
def test_a_query_parameter_that_may_be_sensitive_sends_the_part_to_redaction(text):
    tree = {"content": text}

    assert json_may_hold_key(_encode(tree))
    assert json_may_hold_key(_ascii_encode(tree))
    assert_fast_path_matches(tree)


# --- rule 3's triggers ruled out in a few passes (_trigram_hit) --------------------------


def _triggers(folded: bool) -> list:
    from logs.ingest.redaction import _RULES

    return [t for rule in _RULES if rule.folded == folded for t in rule.triggers]


def test_every_literal_trigger_is_hit_in_any_letter_case_where_folded():
    import itertools

    from logs.ingest.redaction import _trigram_hit

    literals = [t for t in _triggers(folded=False) if isinstance(t, str)]
    for word in _triggers(folded=True):
        literals += ["".join(c) for c in itertools.product(*((ch, ch.upper()) for ch in word))]
    assert len(literals) > 64
    for literal in literals:
        assert _trigram_hit(literal), literal
        assert _trigram_hit(f"é中 {literal} 🙂"), literal


# Every text each pattern trigger matches at its start (they are alternations of literals).
PATTERN_TRIGGER_TEXTS = [
    *("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    *("glpat-", "gldt-", "glft-", "glrt-", "glsoat-", "glcbt-", "glptt-", "glagent-"),
    *("Basic", "BASIC", "AKIA", "ASIA", "A3T", "ABIA", "ACCA", "AIza", "xox", "xapp-"),
]


def test_every_text_of_each_pattern_trigger_is_hit():
    from logs.ingest.redaction import _trigram_hit

    patterns = [t for t in _triggers(folded=False) if not isinstance(t, str)]
    for pattern in patterns:
        assert any(pattern.match(text) for text in PATTERN_TRIGGER_TEXTS), pattern
    for text in PATTERN_TRIGGER_TEXTS:
        assert any(pattern.match(text) for pattern in patterns), text
        assert _trigram_hit(text), text
        assert _trigram_hit(f"x {text}\u00e9"), text


@PROPERTY_SETTINGS
@given(st.data())
def test_every_text_a_pattern_trigger_finds_is_hit(data):
    from logs.ingest.redaction import _trigram_hit

    patterns = [t for t in _triggers(folded=False) if not isinstance(t, str)]
    pattern = data.draw(st.sampled_from(patterns))
    text = data.draw(st.from_regex(pattern))

    assert _trigram_hit(text)


@PROPERTY_SETTINGS
@given(st.one_of(text_with_secrets().map(lambda planted: planted[0]), filler_text))
def test_a_text_without_a_hit_is_left_as_it_is(text):
    from logs.ingest.redaction import _rule_three_triggered, _trigram_hit

    if not _trigram_hit(text):
        assert not _rule_three_triggered(text)
        assert not json_may_hold_key(_encode(text)) or "=" in text
