"""HTTP/1.1 request framing: where a request's head ends and how long its body is, nothing else.

The front (``online_server.front``) reads a request whole before any worker thread sees it,
so it must know, from bytes alone, when a request is complete and when it can never be. The
rules are RFC 9112's, strictly: one ``Content-Length`` of digits only, or ``Transfer-Encoding:
chunked`` alone (never both: a proxy and this server could then disagree on where the body
ends), chunk sizes in hex, and limits on the request line, the head and the body. Every
refusal is a ``FramingError`` carrying the status and the message the client gets as JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
DIGITS = re.compile(rb"[0-9]+")
HEX = re.compile(rb"[0-9A-Fa-f]+")


class FramingError(Exception):
    """The bytes are not a request this server reads: ``status`` and ``message`` are what the client gets."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def bad_request(message: str) -> FramingError:
    return FramingError(400, "BAD_REQUEST", message)


@dataclass(frozen=True)
class Limits:
    """Sizes a request may not exceed (gunicorn's ``limit_request_*`` settings and ``MAX_BODY_BYTES``)."""

    request_line: int = 4094
    head: int = 64 * 1024
    fields: int = 100
    body: int = 1 << 20


@dataclass
class Head:
    """A parsed request line and header block."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]] = field(default_factory=list)  # (name lower-cased, value), in order
    content_length: int = 0
    chunked: bool = False
    expects_continue: bool = False

    @property
    def has_body(self) -> bool:
        return self.chunked or self.content_length > 0


def parse_head(block: bytes, limits: Limits) -> Head:
    """The request line and headers (``block`` without its final blank line); ``FramingError`` when malformed."""
    lines = block.split(b"\r\n")
    request_line = lines[0]
    if len(request_line) > limits.request_line:
        raise FramingError(414, "URI_TOO_LONG", f"the request line is over {limits.request_line} bytes")
    parts = request_line.split(b" ")
    if len(parts) != 3 or not TOKEN.fullmatch(parts[0]) or not parts[1] or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise bad_request("the request line is not 'METHOD target HTTP/1.1'")
    if len(lines) - 1 > limits.fields:
        raise FramingError(431, "HEADERS_TOO_LARGE", f"more than {limits.fields} header fields")
    head = Head(parts[0].decode("ascii"), parts[1].decode("latin-1"), parts[2].decode("ascii"))
    lengths: list[bytes] = []
    encodings: list[bytes] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not TOKEN.fullmatch(name):  # also refuses obsolete line folding (a leading space)
            raise bad_request(f"malformed header line {line[:40].decode('latin-1')!r}")
        value = value.strip(b" \t")
        if b"\r" in value or b"\n" in value or b"\0" in value:
            raise bad_request(f"header {name.decode('ascii')!r} holds a control character")
        lower = name.lower()
        if lower == b"content-length":
            lengths.append(value)
        elif lower == b"transfer-encoding":
            encodings.extend(v.strip(b" \t").lower() for v in value.split(b","))
        elif lower == b"expect":
            head.expects_continue = value.lower() == b"100-continue"
        head.headers.append((lower.decode("ascii"), value.decode("latin-1")))
    if encodings and lengths:
        raise bad_request("both Transfer-Encoding and Content-Length: send one")
    if encodings:
        if encodings != [b"chunked"]:
            raise FramingError(501, "NOT_IMPLEMENTED", "only 'Transfer-Encoding: chunked' is understood")
        if head.version == "HTTP/1.0":
            raise bad_request("chunked bodies need HTTP/1.1")
        head.chunked = True
    elif lengths:
        if len(lengths) > 1:
            raise bad_request("Content-Length is given more than once")
        if not DIGITS.fullmatch(lengths[0]) or len(lengths[0]) > 18:
            raise bad_request(f"Content-Length {lengths[0][:20].decode('latin-1')!r} is not a non-negative integer")
        head.content_length = int(lengths[0])
        if head.content_length > limits.body:
            raise FramingError(413, "PAYLOAD_TOO_LARGE",
                               f"the body is {head.content_length} bytes, over the {limits.body}-byte limit")
    return head


class ChunkedBody:
    """Decodes a chunked body as its bytes arrive: ``feed`` what came, ``done`` once the last chunk and trailers are in."""

    MAX_LINE = 4096  # a chunk-size line or a trailer line

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.body = bytearray()
        self.done = False
        self._remaining = -1  # bytes left in the current chunk, its CRLF included; -1: a size line is next
        self._trailers = False

    def feed(self, buffer: bytearray) -> None:
        """Consume as much of ``buffer`` as decodes (it is shortened in place); ``FramingError`` when it cannot."""
        while not self.done and buffer:
            if self._trailers:
                end = buffer.find(b"\r\n")
                if end < 0:
                    self._check_line(buffer)
                    return
                del buffer[:end + 2]
                self.done = end == 0  # a blank line ends the trailers
            elif self._remaining < 0:
                end = buffer.find(b"\r\n")
                if end < 0:
                    self._check_line(buffer)
                    return
                size_text = bytes(buffer[:end]).partition(b";")[0].strip(b" \t")
                del buffer[:end + 2]
                if not HEX.fullmatch(size_text) or len(size_text) > 15:
                    raise bad_request(f"chunk size {size_text[:20].decode('latin-1')!r} is not hexadecimal")
                size = int(size_text, 16)
                if size == 0:
                    self._trailers = True
                elif len(self.body) + size > self.max_bytes:
                    raise FramingError(413, "PAYLOAD_TOO_LARGE", f"the body is over the {self.max_bytes}-byte limit")
                else:
                    self._remaining = size + 2
            elif self._remaining > 2:  # chunk data
                take = min(self._remaining - 2, len(buffer))
                self.body += buffer[:take]
                del buffer[:take]
                self._remaining -= take
            else:  # the CRLF after a chunk's data
                if len(buffer) < 2:
                    if bytes(buffer) != b"\r":
                        raise bad_request("a chunk is longer than its size says")
                    return
                if buffer[:2] != b"\r\n":
                    raise bad_request("a chunk is longer than its size says")
                del buffer[:2]
                self._remaining = -1

    def _check_line(self, buffer: bytearray) -> None:
        if len(buffer) > self.MAX_LINE:
            raise bad_request(f"a chunk-size or trailer line is over {self.MAX_LINE} bytes")
