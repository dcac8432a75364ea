"""Downloads that run beside the server's work, one per file, shared by everyone who asks for it.

A server asks ``DOWNLOADS.join(source, who)`` and gets the file's one ``Job``: started in its own
thread on the first ask, joined by later askers, so two users asking for the same file share one
transfer. Each asker waits in its own loop (``job.wait``), reads ``job.status()`` for a progress
line (bytes, total, rate, time left), and may ``leave``; a download nobody waits for any more is
cancelled at its next received piece. Nothing here holds the model's run slot.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .download import WeightsUnavailable, fetch
from .pretrained import Source


class Cancelled(WeightsUnavailable):
    """The download was cancelled: everyone who waited for it left."""


@dataclass
class Job:
    """One file's download: progress so far, and its outcome once ``finished`` is set."""

    source: Source
    done: int = 0
    total: int | None = None
    started: float = field(default_factory=time.monotonic)
    path: Path | None = None
    error: Exception | None = None
    cancelled: bool = False
    waiters: set = field(default_factory=set)
    finished: threading.Event = field(default_factory=threading.Event)

    def progress(self, done: int, total: int | None, what: str) -> None:
        """fetch's progress callback: records bytes; raising here stops the transfer."""
        if self.cancelled:
            raise Cancelled(f"{self.source.name}: download cancelled")
        self.done, self.total = done, total or self.total

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True once the download has finished (well or not)."""
        return self.finished.wait(timeout)

    def rate(self) -> float:
        """Bytes per second since the start."""
        return self.done / max(time.monotonic() - self.started, 1e-3)

    def status(self) -> str:
        """E.g. 'downloading coco-faster-rcnn: 12.3 of 167.5 MB, 2.1 MB/s, about 1 min 14 s left'."""
        total = self.total or self.source.bytes
        rate = self.rate()
        left = (total - self.done) / rate if rate > 0 and total >= self.done else None
        eta = f", about {_duration(left)} left" if left is not None and self.done else ", waiting for the first bytes"
        return (f"downloading {self.source.name}: {self.done / 1e6:.1f} of {total / 1e6:.1f} MB, "
                f"{rate / 1e6:.2f} MB/s{eta}")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


class Downloads:
    """The server's running downloads, one ``Job`` per source name."""

    def __init__(self):
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def join(self, source: Source, who: str) -> Job:
        """The running download of ``source`` with ``who`` among its waiters, started if none runs."""
        with self._lock:
            job = self._jobs.get(source.name)
            if job is None or job.finished.is_set():
                job = Job(source)
                self._jobs[source.name] = job
                threading.Thread(target=self._run, args=(job,), name=f"download-{source.name}", daemon=True).start()
            job.waiters.add(who)
            return job

    def leave(self, job: Job, who: str) -> None:
        """``who`` stops waiting; the last waiter to leave an unfinished download cancels it."""
        with self._lock:
            job.waiters.discard(who)
            if not job.waiters and not job.finished.is_set():
                job.cancelled = True

    def leave_all(self, who: str) -> int:
        """``who`` stops waiting for every download (the page's Cancel); returns how many it left."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if who in j.waiters]
        for job in jobs:
            self.leave(job, who)
        return len(jobs)

    def running(self) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if not j.finished.is_set()]

    def _run(self, job: Job) -> None:
        try:
            job.path = fetch(job.source, job.progress)
        except Exception as err:  # handed to every waiter, who turns it into a message
            job.error = err
        finally:
            job.finished.set()


DOWNLOADS = Downloads()
