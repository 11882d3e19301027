"""Reading an HTTP answer within limits: bytes received, and bytes after decompression.

The body is read in chunks as it arrives and decompressed incrementally with
:mod:`zlib` (gzip and deflate), never beyond the decompressed limit, so neither a huge
answer nor a small gzip bomb costs more memory than the limits allow. A refusal is a
:class:`~gatekeeper.errors.SourceError` that names the limit.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import aiohttp

from gatekeeper.errors import SourceError

CHUNK_BYTES = 64 * 1024
INFLATE_STEP_BYTES = 1024 * 1024
#: zlib's window bits for "gzip or zlib, detected from the header" (see zlib.decompressobj).
_GZIP_OR_ZLIB = 32 + zlib.MAX_WBITS
_ENCODINGS = ("identity", "gzip", "x-gzip", "deflate")


class LimitExceeded(SourceError):
    """An answer beyond one of the configured size limits."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits of one answer, in bytes."""

    answer_bytes: int
    decompressed_bytes: int


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


async def read_body(response: aiohttp.ClientResponse, limits: Limits, *, source: str) -> bytearray:
    """The body of ``response``, decompressed, within ``limits`` (not copied once more).

    Raises
    ------
    SourceError
        :class:`LimitExceeded` naming the limit, or an unsupported or corrupt encoding.
    """
    declared = response.content_length
    if declared is not None and declared > limits.answer_bytes:
        raise _too_large(source, limits.answer_bytes, f"declares {declared} bytes")
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower() or "identity"
    if encoding not in _ENCODINGS:
        raise SourceError(f"{source} answered in the unsupported Content-Encoding {encoding!r}")
    inflater = None if encoding == "identity" else zlib.decompressobj(_GZIP_OR_ZLIB)
    if encoding == "deflate":
        inflater = zlib.decompressobj()  # zlib-wrapped, as HTTP's "deflate" is
    body = bytearray()
    received = 0
    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
        received += len(chunk)
        if received > limits.answer_bytes:
            raise _too_large(
                source, limits.answer_bytes, f"sent more than {received - len(chunk)} bytes"
            )
        if inflater is None:
            body += chunk
        else:
            _inflate(inflater, chunk, body, limits.decompressed_bytes, source)
    if inflater is not None:
        try:
            body += inflater.flush()
        except zlib.error as exc:
            raise SourceError(f"{source} answered a corrupt {encoding} body: {exc}") from None
        if len(body) > limits.decompressed_bytes:
            raise _too_inflated(source, limits.decompressed_bytes)
    return body


def _inflate(
    inflater: zlib._Decompress, chunk: bytes, body: bytearray, limit: int, source: str
) -> None:
    data = chunk
    try:
        while data:
            # Never more than a chunk's worth at once: a bomb inflates a chunk a thousandfold.
            body += inflater.decompress(data, min(limit - len(body) + 1, INFLATE_STEP_BYTES))
            if len(body) > limit:
                raise _too_inflated(source, limit)
            data = inflater.unconsumed_tail
    except zlib.error as exc:
        raise SourceError(f"{source} answered a corrupt compressed body: {exc}") from None


def _too_large(source: str, limit: int, what: str) -> LimitExceeded:
    return LimitExceeded(
        f"{source} answer refused: it {what}, beyond the limit of {_mib(limit)} "
        "(max_answer_bytes, --prometheus-max-bytes)"
    )


def _too_inflated(source: str, limit: int) -> LimitExceeded:
    return LimitExceeded(
        f"{source} answer refused: it decompresses to more than the limit of {_mib(limit)} "
        "(max_decompressed_bytes, --prometheus-max-decompressed-bytes)"
    )
