"""Bounded reading of the command line's input files.

``gatekeeper judge FILE`` must not read ``/dev/zero`` until memory runs out, load a 2 GB
file whole, or wait forever on a FIFO that nobody writes to. :func:`read_bounded` reads at
most ``max_bytes`` (a regular file's size is checked before anything is read) and gives up
when no data arrives for ``timeout_seconds``; each refusal is bad input naming the limit.
"""

from __future__ import annotations

import os
import select
import stat
from dataclasses import dataclass
from pathlib import Path

from gatekeeper.errors import InvalidArgument

#: The largest input file, in bytes: a 16 MiB JudgeRequest (the server's largest message)
#: is at most about four times as long in the JSON mapping.
DEFAULT_MAX_INPUT_BYTES = 64 * 1024 * 1024
#: Seconds to wait for the next bytes of a pipe or FIFO before giving up.
DEFAULT_READ_TIMEOUT_SECONDS = 30.0
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class InputLimits:
    """How much may be read, and how long to wait for it (``judge``'s ``--max-input-bytes``
    and ``--read-timeout``)."""

    max_bytes: int = DEFAULT_MAX_INPUT_BYTES
    timeout_seconds: float = DEFAULT_READ_TIMEOUT_SECONDS


def read_bounded(
    path: Path,
    *,
    field: str = "FILE",
    max_bytes: int = DEFAULT_MAX_INPUT_BYTES,
    timeout_seconds: float = DEFAULT_READ_TIMEOUT_SECONDS,
) -> bytes:
    """The bytes of ``path``, at most ``max_bytes`` of them.

    Parameters
    ----------
    path : Path
        A regular file, a FIFO, or a character device such as ``/dev/stdin``.
    field : str
        The name of the input in errors (the command-line argument).
    max_bytes : int
        More than this is refused (``--max-input-bytes``).
    timeout_seconds : float
        A FIFO or pipe that yields no byte for this long (no writer, or a stalled one) is
        refused (``--read-timeout``).

    Raises
    ------
    InvalidArgument
        When the file cannot be read, is too large, or stalls.
    """
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens without a writer
    except OSError as exc:
        raise InvalidArgument.single(field, f"cannot read {path}: {exc}") from None
    try:
        info = os.fstat(handle)
        if stat.S_ISREG(info.st_mode) and info.st_size > max_bytes:
            raise _too_large(field, path, max_bytes, f"it has {info.st_size} bytes")
        return _read(handle, path, field=field, max_bytes=max_bytes, timeout=timeout_seconds)
    finally:
        os.close(handle)


def _read(handle: int, path: Path, *, field: str, max_bytes: int, timeout: float) -> bytes:
    poller = select.poll()
    poller.register(handle, select.POLLIN)
    chunks: list[bytes] = []
    size = 0
    while True:
        if not poller.poll(timeout * 1000):
            raise InvalidArgument.single(
                field,
                f"no data from {path} for {timeout:g} s (a FIFO without a writer?); "
                "the limit is --read-timeout",
            )
        try:
            chunk = os.read(handle, min(_CHUNK, max_bytes + 1 - size))
        except BlockingIOError:  # woken without data (a FIFO's writer not yet there)
            continue
        except OSError as exc:
            raise InvalidArgument.single(field, f"cannot read {path}: {exc}") from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(field, path, max_bytes, "it has more")


def _too_large(field: str, path: Path, limit: int, found: str) -> InvalidArgument:
    return InvalidArgument.single(
        field, f"{path} is larger than the limit of {limit} bytes ({found}); see --max-input-bytes"
    )
