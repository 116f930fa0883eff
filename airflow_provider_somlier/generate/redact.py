"""Mask GitHub tokens in any text SoMLier is about to print.

A token can reach a message by many roads: GitHub echoing the request in an error,
a user putting it in the wrong positional argument, a traceback quoting a value.
Rather than guard each road, every message goes through :func:`mask_tokens` on its
way out: the configured token itself and anything shaped like a GitHub token
(``ghp_``, ``gho_``, ``ghs_``, ``ghu_``, ``ghr_``, ``github_pat_`` and 40-digit hex
classic tokens) is replaced by ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
# GitHub's token formats: https://github.blog/2021-04-05-behind-githubs-new-authentication-token-formats/
_TOKEN_SHAPES = re.compile(
    r"github_pat_[A-Za-z0-9_]+"
    r"|\bgh[pousr]_[A-Za-z0-9_]+"
    r"|(?<![0-9A-Za-z])[0-9a-f]{40}(?![0-9A-Za-z])"
)
_PREFIXED_TOKEN = re.compile(r"github_pat_[A-Za-z0-9_]{20,}|\bgh[pousr]_[A-Za-z0-9]{20,}")
_MIN_SECRET = 4  # shorter "secrets" would mask ordinary words; such a token is rejected by GitHub anyway


def mask_tokens(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every given secret and every token-shaped word replaced by ``***``."""
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _TOKEN_SHAPES.sub(MASK, text)


def holds_token(text: str) -> bool:
    """Whether ``text`` holds a prefixed GitHub token (a 40-digit hex string may be a commit SHA)."""
    return _PREFIXED_TOKEN.search(text) is not None
