"""Bring a published weight file onto disk once, safely, and check it every time it is used.

ImageNet files come from the Hugging Face Hub through ``huggingface_hub.hf_hub_download``, so its
cache layout, ``HF_HOME``, ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` behave as users expect (the
variables are read at call time, not only when huggingface_hub was imported). COCO files come from
torchvision's URLs into torch's hub cache (``torch.hub.get_dir()/checkpoints``, ``TORCH_HOME``),
under the file name torchvision publishes, with torch.hub's ``check_hash`` rule: the sha256 of the
file starts with the hex digits after the last ``-`` of its name. torch.hub's own downloader has no
timeout and no size bound, so the transfer here is a plain stream with both.

Every use re-checks the file: a Hub blob's sha256 against its blob name (the Hub names LFS blobs by
their sha256), a torchvision file's sha256 against the prefix in its name. Nothing is retried: a
failure raises ``WeightsUnavailable`` naming what is missing and the command that pre-downloads it.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from .pretrained import Source

# progress(done_bytes, total_bytes or None, description); the app passes a gr.Progress adapter.
Progress = Callable[[int, "int | None", str], None]


def _timeout_from_env(default: float = 600.0) -> float:
    try:
        value = float(os.environ.get("RESFPN_DOWNLOAD_TIMEOUT", default))
    except ValueError:
        return default
    return value if value > 0 else default


TIMEOUT_S = _timeout_from_env()  # seconds for a whole transfer (RESFPN_DOWNLOAD_TIMEOUT)
STALL_S = 30.0  # no byte for this long: the connection is given up
_HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")  # torch.hub.HASH_REGEX
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class WeightsUnavailable(RuntimeError):
    """A published file that is neither cached nor downloadable now; the message says how to get it."""


class CorruptFile(ValueError):
    """A cached or downloaded file whose content is not what was published; it is never used.

    ``paths`` are the cache entries to delete before downloading again (empty for a discarded download).
    """

    def __init__(self, message: str, paths: tuple[Path, ...] = ()):
        super().__init__(message)
        self.paths = paths


def download_command(source: Source) -> str:
    """The command that pre-downloads ``source`` for offline use."""
    return f"python -m resfpn download {source.family} {source.name[len(source.family) + 1:]}"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def offline() -> bool:
    """``HF_HUB_OFFLINE`` as set now (falling back to huggingface_hub's value read at import)."""
    if "HF_HUB_OFFLINE" in os.environ:
        return _truthy(os.environ["HF_HUB_OFFLINE"])
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_cache_dir() -> Path:
    """The Hugging Face cache as the environment says now: ``HF_HUB_CACHE``, else ``HF_HOME``/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.path.expandvars(os.path.expanduser(os.environ["HF_HUB_CACHE"])))
    if os.environ.get("HF_HOME"):
        return Path(os.path.expandvars(os.path.expanduser(os.environ["HF_HOME"]))) / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def torch_checkpoints_dir() -> Path:
    """torch.hub's checkpoint cache (``$TORCH_HOME/hub/checkpoints``), where torchvision keeps its files."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _lock_for(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def cached_path(source: Source) -> Path | None:
    """The cached file of ``source``, checked against its published hash, or None when not cached.

    Raises:
        CorruptFile: the cached file is there but its content is not what was published.
    """
    return _cached_hub_file(source) if source.repo_id else _cached_torch_file(source)


def fetch(source: Source, progress: Progress | None = None, timeout: float = TIMEOUT_S) -> Path:
    """The local, checked file of ``source``: from the cache, else downloaded once (one caller per file).

    Raises:
        WeightsUnavailable: offline or unreachable and not cached, too large, or too slow.
        CorruptFile: the cached or downloaded content does not match the published hash.
    """
    with _lock_for(source.name):
        path = cached_path(source)
        if path is not None:
            return path
        if offline():
            raise WeightsUnavailable(
                f"{_what(source)} is not cached ({_cache_where(source)}) and HF_HUB_OFFLINE is set, so it "
                f"is not downloaded. Pre-download it where the network is reachable: {download_command(source)}"
            )
        if source.repo_id:
            return _download_hub_file(source, progress, timeout)
        return _download_torch_file(source, progress, timeout)


def _what(source: Source) -> str:
    if source.repo_id:
        return f"{source.repo_id}/{source.filename} ({source.bytes / 1e6:.0f} MB)"
    return f"{source.filename} ({source.bytes / 1e6:.0f} MB)"


def _cache_where(source: Source) -> str:
    return f"looked in {hub_cache_dir() if source.repo_id else torch_checkpoints_dir()}"


# -- the Hugging Face Hub ----------------------------------------------------------------------


def _cached_hub_file(source: Source) -> Path | None:
    from huggingface_hub import hf_hub_download

    try:
        path = hf_hub_download(source.repo_id, source.filename, cache_dir=hub_cache_dir(), local_files_only=True)
    except (FileNotFoundError, OSError, ValueError):  # LocalEntryNotFoundError is a FileNotFoundError
        return None
    check_hub_blob(Path(path))
    return Path(path)


def check_hub_blob(path: Path) -> None:
    """Check a Hub snapshot file: its content's sha256 must equal the blob's name.

    The Hub cache names an LFS file's blob by the file's sha256 (the snapshot entry is a link to
    ``blobs/<sha256>``). Where the cache cannot use links the snapshot holds a copy and the name is
    lost; then only the format's own checks (safetensors' header against the file length) remain.

    Raises:
        CorruptFile: naming the file, the expected and the actual digest, and how to repair it.
    """
    blob = Path(os.readlink(path)).name if path.is_symlink() else ""
    if not _SHA256.match(blob):
        return
    actual = sha256_of(path)
    if actual != blob:
        message = (f"cached file {path} is corrupted or truncated: its sha256 is {actual[:16]}…, but the Hub "
                   f"published {blob[:16]}…. It is not used. Delete {path.resolve()} and download it again.")
        raise CorruptFile(message, (path, path.resolve()))


class _ProgressBar:
    """One progress bar as huggingface_hub drives it: forwards bytes to ``progress`` and enforces the
    deadline and the size bound (raising from ``update`` aborts the transfer)."""

    def __init__(self, callback: Progress | None, deadline: float, max_bytes: int, what: str,
                 total: int | None = None, initial: int = 0, **_ignored):
        self.callback, self.deadline, self.max_bytes, self.what = callback, deadline, max_bytes, what
        self.n, self.total = initial or 0, total

    def update(self, n: int | float | None = 1) -> None:
        self.n += int(n or 0)
        if self.n > self.max_bytes:
            raise WeightsUnavailable(f"{self.what}: refused, the download passed {self.max_bytes:,} bytes, "
                                     f"more than the published size allows")
        if time.monotonic() > self.deadline:
            raise WeightsUnavailable(f"{self.what}: the download did not finish in time and was stopped")
        if self.callback:
            self.callback(self.n, self.total, f"downloading {self.what}")

    def __enter__(self) -> "_ProgressBar":
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def close(self) -> None: ...
    def refresh(self, *a, **k) -> None: ...
    def reset(self, total: int | None = None) -> None:
        self.n, self.total = 0, total
    def set_description(self, *a, **k) -> None: ...
    def set_postfix_str(self, *a, **k) -> None: ...


def _bar_factory(callback: Progress | None, deadline: float, max_bytes: int, what: str):
    """What hf_hub_download takes as ``tqdm_class``: a callable, not a tqdm type, so huggingface_hub
    passes it only the bar's arguments (it makes one bar per transfer, two for Xet transfers)."""
    return lambda *args, **kwargs: _ProgressBar(callback, deadline, max_bytes, what, **kwargs)


def _download_hub_file(source: Source, progress: Progress | None, timeout: float) -> Path:
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    what = f"{source.repo_id}/{source.filename}"
    cache = hub_cache_dir()
    try:
        # One HEAD, not retried: hf_hub_download itself retries an unreachable Hub with backoff (~25 s).
        info = get_hf_file_metadata(hf_hub_url(source.repo_id, source.filename), timeout=min(timeout, STALL_S))
        if info.size is not None and info.size > source.max_bytes:
            raise WeightsUnavailable(f"{what} is {info.size:,} bytes on the Hub; refused above "
                                     f"{source.max_bytes:,} bytes (published about {source.bytes:,})")
        bar = _bar_factory(progress, time.monotonic() + timeout, source.max_bytes, what)
        path = Path(hf_hub_download(source.repo_id, source.filename, cache_dir=cache, tqdm_class=bar,
                                    etag_timeout=min(timeout, STALL_S)))
    except WeightsUnavailable:
        raise
    except Exception as err:  # httpx / huggingface_hub raise many types for "unreachable"
        raise WeightsUnavailable(
            f"{what} could not be downloaded from the Hugging Face Hub and is not cached in {cache} "
            f"({type(err).__name__}: {_first_line(err)}). Pre-download it where the Hub is reachable: "
            f"{download_command(source)}"
        ) from None
    check_hub_blob(path)
    if progress:
        progress(path.stat().st_size, path.stat().st_size, f"downloaded {what}")
    return path


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "no details"


# -- torchvision's URLs into torch's hub cache --------------------------------------------------


def _expected_prefix(source: Source) -> str:
    m = _HASH_IN_NAME.search(source.filename)
    if not m:
        raise ValueError(f"{source.filename}: a torchvision file name carries a sha256 prefix after its last '-'")
    return m.group(1)


def _cached_torch_file(source: Source) -> Path | None:
    path = torch_checkpoints_dir() / source.filename
    if not path.is_file():
        return None
    check_torch_file(path, _expected_prefix(source))
    return path


def check_torch_file(path: Path, prefix: str) -> None:
    """torch.hub's ``check_hash``, applied on every use: the file's sha256 starts with ``prefix``.

    Raises:
        CorruptFile: naming the file, the expected prefix and the actual digest.
    """
    actual = sha256_of(path)
    if not actual.startswith(prefix):
        message = (f"cached file {path} is corrupted, truncated or not the published file: its sha256 is "
                   f"{actual[:16]}…, but its name promises {prefix}…. It is not used. Delete it and download "
                   f"it again.")
        raise CorruptFile(message, (path,))


def _download_torch_file(source: Source, progress: Progress | None, timeout: float) -> Path:
    dest = torch_checkpoints_dir() / source.filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    prefix = _expected_prefix(source)
    deadline = time.monotonic() + timeout
    digest, done = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{source.filename}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(source.url, timeout=min(timeout, STALL_S)) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            if total and total > source.max_bytes:
                raise WeightsUnavailable(f"{source.url} announces {total:,} bytes; refused above {source.max_bytes:,}")
            while chunk := response.read(_CHUNK):
                done += len(chunk)
                if done > source.max_bytes:
                    raise WeightsUnavailable(f"{source.url}: refused, the download passed {source.max_bytes:,} bytes")
                if time.monotonic() > deadline:
                    raise WeightsUnavailable(f"{source.url}: the download did not finish in {timeout:.0f} s and was stopped")
                out.write(chunk)
                digest.update(chunk)
                if progress:
                    progress(done, total, f"downloading {source.filename}")
        if not digest.hexdigest().startswith(prefix):
            raise CorruptFile(f"downloaded {source.url} is not the published file: sha256 {digest.hexdigest()[:16]}… "
                              f"does not start with {prefix}; it was discarded")
        os.replace(tmp, dest)
    except (WeightsUnavailable, CorruptFile):
        raise
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise WeightsUnavailable(
            f"{source.filename} could not be downloaded from {source.url} and is not cached in {dest.parent} "
            f"({type(err).__name__}: {_first_line(err)}). Pre-download it where the network is reachable: "
            f"{download_command(source)}"
        ) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest
