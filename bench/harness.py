"""Measuring on a shared, noisy machine: interleaved timing, per-round ratios, tables, /proc readings.

Used by the benchmark (``bench/bench.py``) and the load test (``scripts/load_test.py``). Nothing is
compared across runs: each figure is a ratio against a reference timed in the same rounds.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

MIB = 2**20
NOISY = 1.5  # per-round ratios spread wider than this (max/min): the machine was too busy to trust the result


def log(msg: str, who: str = "bench") -> None:
    print(f"[{who} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile by nearest rank (nan for no values)."""
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q / 100 * (len(v) - 1))))] if v else float("nan")


def mib(n: float) -> str:
    return f"{n / MIB:.0f} MiB"


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds of ``repeats`` back-to-back calls of ``fn`` (not interleaved with anything)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return median(times)


def interleave(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time each function ``repeats`` times, rotating the order every round (A B C, B C A, ...).

    Returns seconds per call for each name. ``warmup`` untimed rounds come first.
    """
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            start = time.perf_counter()
            fns[n]()
            times[n].append(time.perf_counter() - start)
    return times


def round_ratios(a: list[float], b: list[float]) -> tuple[float, str, bool]:
    """Median of the per-round ratios a/b (robust to slow drifts in load), their range, and whether it is noisy."""
    ratios = [x / y for x, y in zip(a, b)]
    return median(ratios), f"{min(ratios):.2f}–{max(ratios):.2f}", max(ratios) / min(ratios) > NOISY


# ---------------------------------------------------------------------------------------------
# /proc readings (Linux).


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """The memory fields of ``/proc/<pid>/status`` (VmRSS, VmHWM, ...) in bytes; {} once the process has gone."""
    out = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            out[key] = int(parts[0]) * 1024
    return out


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux ``clear_refs`` 5); False if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class MemorySampler(threading.Thread):
    """Samples another process's VmRSS and VmHWM every ``every`` seconds and keeps the peaks."""

    def __init__(self, pid: int, every: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak_rss = self.peak_hwm = 0
        self.samples = 0
        self._halt = threading.Event()

    def sample(self) -> None:
        m = proc_status(self.pid)
        if m:
            self.samples += 1
            self.peak_rss = max(self.peak_rss, m.get("VmRSS", 0))
            self.peak_hwm = max(self.peak_hwm, m.get("VmHWM", 0))

    def run(self) -> None:
        while not self._halt.wait(self.every):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        self.sample()


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def machine() -> list[str]:
    """Markdown lines naming the machine: CPU, cores, torch and gradio versions, load average."""
    import torch

    from resfpn.serving.precision import cpu_bf16_flags

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    try:
        import gradio
        gradio_version = gradio.__version__
    except ImportError:
        gradio_version = "not installed"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    bf16 = ", ".join(cpu_bf16_flags()) or "none"
    return [
        f"- CPU: {cpu_model()} (bf16 instructions: {bf16}); {os.cpu_count()} logical cores, {affinity} in this "
        f"process's affinity mask",
        f"- torch {torch.__version__}, {torch.get_num_threads()} intra-op threads (the app's `set_torch_threads`), "
        f"oneDNN {'on' if torch.backends.mkldnn.is_available() else 'off'}; gradio {gradio_version}; "
        f"Python {platform.python_version()}",
        f"- load average at start: {load}"
        + (f" (above the {affinity} cores: neighbours compete for them; see the OpenMP rows)"
           if os.getloadavg()[0] > (affinity or 1) * 0.75 else ""),
    ]


class Table:
    """A markdown table of measured figures, each with its same-run reference and target."""

    HEAD = ("#", "What", "Measured", "Reference (same run)", "Figure", "Target", "Result")

    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []

    def add(self, item: str, what: str, measured: str, reference: str, figure: str, target: str = "—",
            ok: bool | None = None, noisy: bool = False) -> None:
        result = "—" if ok is None else ("PASS" if ok else "MISS")
        if noisy:
            result += " (noisy: rerun)"
        self.rows.append((item, what, measured, reference, figure, target, result))

    def error(self, item: str, what: str, err: BaseException) -> None:
        self.rows.append((item, what, f"ERROR: {type(err).__name__}: {err}".replace("|", "/")[:200], "", "", "",
                          "ERROR"))

    def render(self) -> str:
        lines = ["| " + " | ".join(self.HEAD) + " |", "|" + "|".join("---" for _ in self.HEAD) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines)
