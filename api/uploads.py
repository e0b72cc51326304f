"""The body of an upload: its media type, and its bytes, gunzipped under the size limit as they are read.

A gzip body is inflated piece by piece, and the limit on the decompressed size is checked after
every piece: a zip bomb (1 GB of zeros is 1 MB of gzip) stops at `max_bytes + 1` decompressed
bytes, whatever it would have grown to.
"""

from __future__ import annotations

import zlib
from enum import StrEnum

from flask import Request

from api.bodies import refuse
from api.errors import ApiError

_PIECE = 1024 * 1024
_GZIP = 16 + zlib.MAX_WBITS  # a gzip header and trailer, not a raw or zlib stream


class Format(StrEnum):
    """The media types an upload may have."""

    JSON = "application/json"
    CSV = "text/csv"
    NDJSON = "application/x-ndjson"


def upload_format(request: Request) -> Format:
    """Return the format the request's Content-Type names; refuse any other."""
    try:
        return Format(request.mimetype)
    except ValueError:
        accepted = ", ".join(kind.value for kind in Format)
        raise ApiError(
            415, "unsupported_media_type", f"Send the records as Content-Type {accepted}.",
            {"content_type": request.mimetype, "accepted": [kind.value for kind in Format]},
        ) from None  # fmt: skip


def read_upload(request: Request, max_bytes: int) -> bytes:
    """Return the request body, decompressed when it is gzip; refuse one over `max_bytes` either way."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        raise ApiError(
            415, "unsupported_content_encoding", f"Content-Encoding {encoding!r} is not accepted; send gzip or none.",
            {"content_encoding": encoding, "accepted": ["gzip", "identity"]},
        )  # fmt: skip
    body = _read_body(request, max_bytes)
    return gunzip(body, max_bytes) if encoding in ("gzip", "x-gzip") else body


def gunzip(data: bytes, max_bytes: int) -> bytes:
    """Return the decompressed gzip `data` (one member or several); stop and refuse past `max_bytes`."""
    out = bytearray()
    rest = data
    while True:
        inflate = zlib.decompressobj(_GZIP)
        pending = rest
        try:
            while not inflate.eof:
                piece = inflate.decompress(pending, min(_PIECE, max_bytes + 1 - len(out)))
                pending = inflate.unconsumed_tail
                if not piece and not pending:
                    raise _bad_gzip("the gzip stream is truncated")
                out += piece
                if len(out) > max_bytes:
                    raise ApiError(
                        413, "body_too_large", f"The body exceeds {max_bytes} bytes once decompressed.",
                        {"max_bytes": max_bytes},
                    )  # fmt: skip
        except zlib.error as exc:
            raise _bad_gzip(f"it is not valid gzip ({exc})") from None
        rest = inflate.unused_data
        if not rest.strip(b"\0"):  # zero padding after the last member is allowed by gzip
            return bytes(out)


def _bad_gzip(why: str) -> ApiError:
    return ApiError(400, "malformed_gzip", f"The body is declared gzip, but {why}.")


def _read_body(request: Request, max_bytes: int) -> bytes:
    if request.content_length is not None:  # api.bodies has already refused a declared excess
        return request.get_data(cache=False)
    # A chunked body declares no length: read one byte past the limit to see if it is over.
    body = request.environ["wsgi.input"].read(max_bytes + 1)
    if len(body) > max_bytes:
        raise refuse(max_bytes)
    return body
