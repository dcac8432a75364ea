"""sha256 of weight files, read in 1 MiB pieces and remembered by (path, size, mtime).

A verified 100–240 MB file is hashed once per process: later uses find its digest by the file's
identity, and a file that changed (another size or modification time) is hashed again. Nothing is
held in memory but the digests.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "w.bin"
    >>> _ = path.write_bytes(b"abc")
    >>> sha256_file(path)[:16], hashes_done(path)
    ('ba7816bf8f01cfea', 1)
    >>> sha256_file(path) == sha256_file(path), hashes_done(path)
    (True, 1)
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import Counter
from pathlib import Path

_CHUNK = 1 << 20
_known: dict[tuple[str, int, int], str] = {}
_hashed: Counter = Counter()  # real hashes per path, for tests and benchmarks
_guard = threading.Lock()


def _identity(path: str | Path) -> tuple[str, int, int]:
    resolved = os.path.realpath(path)
    st = os.stat(resolved)
    return resolved, st.st_size, st.st_mtime_ns


def sha256_file(path: str | Path) -> str:
    """The file's sha256 (hex), from memory when the same file (path, size, mtime) was hashed before."""
    key = _identity(path)
    with _guard:
        known = _known.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with open(key[0], "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    if _identity(path) == key:  # unchanged while it was read: safe to remember
        with _guard:
            _known[key] = value
            _hashed[key[0]] += 1
    return value


def remember(path: str | Path, digest: str) -> None:
    """Record a digest computed while the file was written (a download hashes as it streams)."""
    key = _identity(path)
    with _guard:
        _known[key] = digest


def hashes_done(path: str | Path) -> int:
    """How many times ``path`` was really read to hash it in this process."""
    with _guard:
        return _hashed[os.path.realpath(path)]
