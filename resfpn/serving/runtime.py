"""Process tuning for serving: OpenMP spin, malloc arenas, torch threads.

``tune_process()`` must run before torch loads its OpenMP runtime; this module imports torch only
inside ``set_torch_threads``.
"""

from __future__ import annotations

import os


def tune_process(arenas: int = 2) -> None:
    """Short OpenMP spin and at most ``arenas`` malloc arenas, unless the environment says otherwise.

    libgomp's default busy-wait makes a 2-thread forward 10× slower when another process holds a
    core (as on a shared Space); a short spin keeps the quiet-machine speed (bench/bench.py, item 1).
    glibc gives each worker thread its own malloc arena and keeps freed memory in each; with Gradio's
    thread pool that held ~200 MiB above the memory budget under load (scripts/load_test.py). Same
    as MALLOC_ARENA_MAX, which glibc reads only at process start. No-op off glibc.
    """
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # -8 is M_ARENA_MAX in glibc's malloc.h
    except (OSError, AttributeError):
        pass


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the OS (glibc ``malloc_trim``); no-op off glibc.

    Building a model frees its dense weights, BatchNorm copies and transform temporaries in a
    pattern that leaves them scattered through the heap, where glibc keeps them: with several
    designs built in a row that held about 1 GiB above the memory budget (scripts/load_test.py).
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def usable_cores() -> int:
    """Cores this process may use: ``CPU_CORES`` (set on Hugging Face Spaces), else the affinity mask."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count() or 1
    try:
        declared = int(os.environ.get("CPU_CORES", "0"))
    except ValueError:
        declared = 0
    return max(1, min(declared, affinity) if declared > 0 else affinity)


def set_torch_threads() -> int:
    """Set torch's intra-op threads once, from the cores this process may use; returns the count."""
    import torch

    cores = usable_cores()
    if torch.get_num_threads() != cores:
        torch.set_num_threads(cores)
    return cores
