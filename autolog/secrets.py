"""The one redaction policy: which keys and values are credentials, and how they are hidden.

Applied wherever text leaves the user's process for the store or a server: params and
tags in the store's write path (so it holds whoever logs them: the user, an integration,
environment capture, the MLflow plugin), the captured command line and diff, and what
``autolog sync`` sends and prints.

- A **key** is secret when its last word is a secret word (``password``, ``passwd``,
  ``passphrase``, ``secret``, ``token``, ``auth``, ``authorization``, ``credential(s)``,
  ``creds``, ``apikey``) or its last two words are ``api key``, ``access key``,
  ``private key`` or ``secret key``. Words are split on ``_ . -``, spaces and camelCase, so
  ``HF_TOKEN``, ``db.password`` and ``apiKey`` are secret while ``tokenizer``,
  ``max_tokens``, ``token_pattern``, ``n_passes`` and ``author`` are not. A secret key's
  value is stored as ``***``.
- In every **value**: URL user-info loses its password (``postgres://u:pw@h`` ->
  ``postgres://u:***@h``; a lone ``https://TOKEN@h`` -> ``https://***@h``; ssh user names
  stay), provider-shaped tokens (``ghp_…``, ``hf_…``, ``AKIA…``, ``sk-…``, JWTs) become
  ``***``, and so does the value of a ``secret_key=value`` pair.
- On a **command line** the value after a secret flag is hidden too (``--api-key X``,
  ``--password=X``), and so is that of any flag ending in ``key`` (``--wandb-key X``).
- ``autolog(redact=False)`` or ``AUTOLOG_REDACT=0`` turns all of it off.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from typing import Any

from autolog.env import AUTOLOG_REDACT

REDACTED = "***"

SECRET_WORDS = frozenset({
    "password", "passwd", "passphrase", "secret", "token", "auth", "authorization",
    "credential", "credentials", "creds", "apikey",
})
SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key")})
_SSH_SCHEMES = ("ssh://", "git+ssh://", "ssh+git://", "sftp://")

_enabled = True


def set_enabled(value: bool) -> None:
    """Turn redaction on or off for this process (``autolog(redact=...)``)."""
    global _enabled
    _enabled = bool(value)


def enabled() -> bool:
    """Whether redaction applies now: on unless ``autolog(redact=False)`` or ``AUTOLOG_REDACT=0``."""
    if os.environ.get(AUTOLOG_REDACT, "").strip().lower() in ("0", "false", "no", "off"):
        return False
    return _enabled


@functools.lru_cache(maxsize=1)
def _patterns() -> tuple[re.Pattern, re.Pattern, re.Pattern, re.Pattern]:
    # Compiled on first use: `import autolog` must not pay for them.
    words = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
    userinfo = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^/\s@'\"<>]*)@")
    tokens = re.compile(
        r"\b(?:gh[pousr]_[A-Za-z0-9]{16,}|github_pat_\w{20,}|glpat-[\w-]{16,}|xox[abprs]-[\w-]{10,}|(?:AKIA|ASIA)[0-9A-Z]{16}"
        r"|sk-(?=[\w-]*[0-9])[\w-]{20,}|hf_[A-Za-z0-9]{16,}|AIza[\w-]{30,}|eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,})"
    )
    # key=value / key: value / "key": "value"; whether the key is secret is decided by is_secret_key.
    assignment = re.compile(
        r"(?<![\w.-])(?P<q>['\"]?)(?P<key>[A-Za-z_][\w.-]*)(?P=q)(?P<sep>\s*[=:]\s*)(?P<val>\"[^\"\n]*\"|'[^'\n]*'|[^\s,;&'\"]+)"
    )
    return words, userinfo, tokens, assignment


def key_words(key: str) -> list[str]:
    """The lower-case words of a key: split on ``_ . -``, spaces, and camelCase."""
    return [w.lower() for w in _patterns()[0].findall(str(key))]


def is_secret_key(key: str, flag: bool = False) -> bool:
    """Whether ``key`` names a credential (its last word is a secret word; whole words only).

    With ``flag=True`` (a command-line option) a last word ``key`` is enough: ``--wandb-key``.
    """
    words = key_words(key)
    if not words:
        return False
    if words[-1] in SECRET_WORDS or (flag and words[-1] == "key"):
        return True
    return len(words) > 1 and (words[-2], words[-1]) in SECRET_PAIRS


def _userinfo(match: re.Match) -> str:
    scheme, info = match[1], match[2]
    if not info:
        return match[0]
    user, colon, _password = info.partition(":")
    if colon:
        return f"{scheme}{user}:{REDACTED}@"
    if scheme.lower() in _SSH_SCHEMES or info == REDACTED:
        return match[0]  # an ssh login name, or already redacted
    return f"{scheme}{REDACTED}@"


def scrub(text: str, code: bool = False) -> str:
    """``text`` with URL passwords, provider-shaped tokens and ``secret=value`` values replaced by ``***``.

    With ``code=True`` (added lines of a diff) only quoted values of assignments are
    replaced, so the patch still applies and the code still parses.
    """
    _words, userinfo, tokens, assignment = _patterns()
    if "@" in text:
        text = userinfo.sub(_userinfo, text)
    text = tokens.sub(REDACTED, text)

    def replace(match: re.Match) -> str:
        if not is_secret_key(match["key"]):
            return match[0]
        value = match["val"]
        head = f"{match['q']}{match['key']}{match['q']}{match['sep']}"
        if value[0] in "'\"":
            return f"{head}{value[0]}{REDACTED}{value[0]}"
        return match[0] if code or value == REDACTED else f"{head}{REDACTED}"

    return assignment.sub(replace, text)


def strip_userinfo(url: str) -> str:
    """``url`` without any user-info, then scrubbed: for URLs that are used again (pip requirement
    lines, ``git clone``), where a ``***`` password would fail and no user-info asks for credentials."""
    return scrub(re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@", r"\1", url.strip()))


def redact_value(key: str, value: str) -> str:
    """The stored form of one param or tag: ``***`` for a secret key, else ``value`` scrubbed."""
    if not enabled():
        return value
    if is_secret_key(key):
        return REDACTED
    return scrub(value)


def redact_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{key: redact_value(key, value)}`` for str values (others pass through)."""
    if not enabled():
        return dict(values)
    return {k: redact_value(k, v) if isinstance(v, str) else v for k, v in values.items()}


def redact_argv(argv: list[str]) -> list[str]:
    """A command line with secrets hidden: values of secret flags (``--token X``, ``--creds=X``) and scrubbed text."""
    if not enabled():
        return list(argv)
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next and not arg.startswith("-"):
            out.append(REDACTED)
            hide_next = False
            continue
        hide_next = False
        if arg.startswith("-") and len(arg) > 1:
            name, eq, _value = arg.partition("=")
            if is_secret_key(name.lstrip("-"), flag=True):
                if eq:
                    out.append(f"{name}={REDACTED}")
                else:
                    out.append(arg)
                    hide_next = True
                continue
        out.append(scrub(arg))
    return out


def scrub_diff(diff: bytes) -> bytes:
    """Scrub the added lines of a patch (context lines must stay as they are for it to apply)."""
    if not enabled():
        return diff
    lines = diff.split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(b"+") and not line.startswith(b"+++ "):
            text = line.decode("utf-8", "surrogateescape")
            clean = scrub(text, code=True)
            if clean != text:
                lines[i] = clean.encode("utf-8", "surrogateescape")
    return b"\n".join(lines)


def scrub_known(text: str, variables: tuple[str, ...]) -> str:
    """``scrub(text)``, and every value of the environment ``variables`` replaced too (server tokens in errors)."""
    text = scrub(str(text))
    for name in variables:
        secret = os.environ.get(name)
        if secret and len(secret) >= 3:
            text = text.replace(secret, REDACTED)
    return text
