"""What crosses the wire: request bodies parsed as strict JSON, answers encoded as strict JSON.

Python's ``json`` accepts ``NaN`` and ``Infinity``, turns ``1e400`` into infinity and
a 400-digit integer into a number no float can hold, and recurses until the stack gives
out; it writes NaN back and refuses numpy scalars. Every one of those reached a model or
became a 500. Here a body is JSON as RFC 8259 defines it, with every number finite and
within a double's range, and an answer is JSON a strict client can read.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

MAX_NUMBER = sys.float_info.max
MAX_MESSAGE_CHARS = 300  # an error message a client gets, at most (the server log has the whole of it)
_SERVER_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.@+~-]+/)+[\w.@+~-]*")  # absolute, two segments or more


class BadBodyError(ValueError):
    """The request body is not strict JSON with finite numbers in a double's range."""


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise BadBodyError(f"the number {text[:40]} is outside the range of a double")
    return value


def _int(text: str) -> int:
    if len(text) > 320:  # beyond any double, and cheaper to refuse than to convert
        raise BadBodyError(f"the number {text[:40]}... ({len(text)} digits) is outside the range of a double")
    value = int(text)
    if abs(value) > MAX_NUMBER:
        raise BadBodyError(f"the number {text[:40]}... is outside the range of a double")
    return value


def _constant(name: str) -> float:
    raise BadBodyError(f"{name} is not a JSON number; send finite numbers")


def _object(pairs: list[tuple[str, Any]]) -> dict:
    """An object whose keys are all different: with a duplicate, which value wins is a guess."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise BadBodyError(f"the key {key[:40]!r} appears more than once in one object")
            seen.add(key)
    return value


def parse_json(body: bytes | str) -> Any:
    """The body as Python values; ``BadBodyError`` naming what is wrong (a duplicate key too)."""
    try:
        return json.loads(body, parse_float=_float, parse_int=_int, parse_constant=_constant, object_pairs_hook=_object)
    except BadBodyError:
        raise
    except RecursionError:
        raise BadBodyError("the body is nested too deeply to be a model input") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise BadBodyError(f"the body is not JSON: {exc}") from None


def public_message(text: str) -> str:
    """What a client may read of an error: one line, no traceback, no server path, bounded.

    A model's exception message can hold a traceback, the folder the model was unpacked in
    or a whole input echoed back; the client gets the last line of a traceback (the
    exception itself), paths replaced by ``<path>``, cut to ``MAX_MESSAGE_CHARS``.
    """
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[0]
    before, marker, _ = line.partition("Traceback (most recent call last)")
    if marker:  # keep what precedes the traceback and the exception it ends with
        line = f"{before}{lines[-1]}" if len(lines) > 1 else before
    line = _SERVER_PATH.sub("<path>", line)
    return line if len(line) <= MAX_MESSAGE_CHARS else line[:MAX_MESSAGE_CHARS - 3] + "..."


class AnswerNotJsonError(ValueError):
    """The model's answer cannot be written as strict JSON (NaN, infinity, an object JSON has no form for)."""


def _plain(value: Any) -> Any:
    """numpy scalars and arrays (what a model's ``predict`` returns) as the Python values they hold."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def encode_answer(result: Any) -> bytes:
    """``{"result": ...}`` as compact JSON and a newline (what Flask's ``jsonify`` writes)."""
    try:
        return json.dumps({"result": result}, separators=(",", ":"), allow_nan=False, default=_plain).encode() + b"\n"
    except (TypeError, ValueError) as exc:
        raise AnswerNotJsonError(f"the model's answer is not JSON: {exc}") from None


class BodyTooLargeError(ValueError):
    """The request body is over ``MAX_BODY_BYTES``."""


def read_body(environ: dict, max_bytes: int) -> bytes:
    """The request body, with or without a Content-Length (chunked); ``BodyTooLargeError`` over ``max_bytes``.

    A chunked body is read up to one byte past the limit, so an oversized one is a 413
    rather than a truncated body that then fails to parse.
    """
    stream = environ["wsgi.input"]
    declared = environ.get("CONTENT_LENGTH") or ""
    if declared:
        try:
            length = int(declared)
        except ValueError:
            raise BadBodyError(f"Content-Length {declared[:20]!r} is not a number") from None
        if length > max_bytes:
            raise BodyTooLargeError(f"the body is {length} bytes, over the {max_bytes}-byte limit")
        return stream.read(length) if length > 0 else b""
    if environ.get("wsgi.input_terminated") or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        data = stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise BodyTooLargeError(f"the body is over the {max_bytes}-byte limit")
        return data
    return b""


def is_json(content_type: str) -> bool:
    """The same test as Flask's ``request.is_json``: ``application/json`` or ``application/*+json``."""
    mimetype = content_type.partition(";")[0].strip().lower()
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))
