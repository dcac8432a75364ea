"""Load test for the resfpn explorer: `python app.py` under N concurrent gradio_client clients.

Starts the app as a user does (``python app.py`` on a free port of 127.0.0.1), drives its documented
``/analyze`` endpoint from ``--clients`` threads with ``--requests`` mixed requests each (fixed seed):

* shape   - a configuration without an image (random valid designs, some with a shape mismatch,
            which is a normal answer with ``mismatch`` set);
* run     - a configuration with an example photo (inputs 128-512), a real forward;
* bad-*   - requests the server must refuse with a readable message (bad values, unknown keys, caps,
            runs over the memory guard or with a mismatch, unusable image files). One counts as
            answered when gradio_client raises AppError whose message contains the expected text.

"Queue is full" (gradio_client.utils.QueueError) is counted as busy. Every other outcome is an
unexpected error and is printed. Then it reports latency per category, the server's peak memory
(VmHWM) against the memory budget, checks the server still answers, and stops it.

Exit status 0 only when there were no unexpected errors, every bad request got its message, the
server's peak memory growth stayed within the memory budget, its log holds no traceback other than
gr.Error refusals, and it was alive and answered normally afterwards.

    python -m scripts.load_test                       # 8 clients x 20 requests, budget 512 MiB
    python -m scripts.load_test --clients 16 --queue-size 4
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from gradio_client.utils import QueueError

from bench.harness import MemorySampler, mib, percentile, proc_status
from resfpn import Config
from resfpn.serving.engine import cached_trace
from resfpn.serving.limits import Limits, memory_estimate
from scripts import serve

ROOT = serve.ROOT
EXAMPLES = sorted((ROOT / "assets" / "examples").glob("*.jpg"))
GENERIC = "has not enabled verbose error reporting"
CATEGORIES = ("shape", "run", "bad-config", "bad-run", "bad-image")

R50 = {"widths": [256, 512, 1024, 2048], "blocks": [3, 4, 6, 3], "block": "bottleneck", "policy": "match"}


# ---------------------------------------------------------------------------------------------
# Requests.


@dataclass
class Request:
    category: str
    name: str
    config: Any
    image: str | None = None  # a local path, sent with handle_file, or a raw string (see "image-not-uploaded")
    raw_image: bool = False  # send ``image`` as-is instead of handle_file(image)
    expect_error: str | None = None  # text the AppError message must contain
    expect_mismatch: bool | None = None  # for shape requests: True / False / None (not checked)


@dataclass
class Outcome:
    request: Request
    seconds: float
    status: str  # "ok", "answered", "busy", "unexpected"
    detail: str = ""


def bad_requests(tmp: Path, guard: dict | None, image: str) -> list[Request]:
    """Every request the server must refuse, each with the text its message must contain."""
    text_png = tmp / "notes.png"
    text_png.write_text("this is a text file, not an image\n")
    empty = tmp / "empty.png"
    empty.write_bytes(b"")
    truncated = tmp / "truncated.jpg"
    truncated.write_bytes(Path(image).read_bytes()[:2000])
    garbage_jpg = tmp / "garbage.jpg"
    garbage_jpg.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)  # a JPEG header, then noise

    cfg = [
        ("skip-E", {"skip": "E"}, "skip='E'"),
        ("unknown-key", {"colour": 1}, "unknown configuration key(s) ['colour']"),
        ("width-out-of-range", {"widths": [64, 128, 256, 99999]}, "widths[3]=99999"),
        ("width-cap", {"widths": [64, 128, 256, 4096]}, "cap of 2048 channels"),
        ("stem-cap", {"stem_width": 3000}, "stem_width 3000 is above this server's cap"),
        ("blocks-cap", {"blocks": [2, 2, 32, 2]}, "cap is 16 per stage"),
        ("input-zero", {"input_height": 0}, "input_height=0: must be between 1 and 8192"),
        ("input-too-big", {"input_width": 10000}, "input_width=10000: must be between 1 and 8192"),
        ("input-fraction", {"input_height": 224.5}, "input_height=224.5: expected a whole number"),
        ("input-string", {"input_height": "224"}, "input_height='224': expected a whole number"),
        ("policy-x3", {"policy": "x3"}, "policy='x3'"),
        ("widths-string", {"widths": "abc"}, "widths='abc': expected four whole numbers"),
        ("widths-three", {"widths": [64, 128, 256]}, "expected exactly four values"),
        ("p7-without-p6", {"p7": True, "p6": "none"}, "p7=True needs a P6"),
        ("p7-string", {"p7": "yes"}, "p7='yes': expected true or false"),
        ("bottleneck-width", {"block": "bottleneck", "widths": [64, 128, 256, 510]}, "divisible by the expansion"),
        ("config-not-object", [1, 2, 3], "config must be a JSON object"),
    ]
    out = [Request("bad-config", name, c, expect_error=msg) for name, c, msg in cfg]
    run = [
        ("run-mismatch", {"input_height": 225, "input_width": 225}, "See the fixes above the diagram"),
        ("run-input-cap", {"input_height": 4096, "input_width": 4096, "policy": "match"},
         "above this server's cap of 2048 pixels a side"),
        ("run-batch-cap", {"batch": 8}, "batch 8 is above this server's cap of 4"),
        ("run-one-channel", {"input_channels": 1}, "Images have 3 channels"),
    ]
    if guard is not None:
        run.append(("run-memory-guard", guard, "above this server's budget"))
    out += [Request("bad-run", name, c, image=image, expect_error=msg) for name, c, msg in run]
    images = [
        ("text-as-png", text_png, "not an image Pillow can read"),
        ("empty-file", empty, "the file is empty"),
        ("truncated-jpeg", truncated, "truncated or corrupt"),
        ("garbage-jpeg", garbage_jpg, "This file cannot be used"),
    ]
    out += [Request("bad-image", name, {"input_height": 128, "input_width": 128}, image=str(p), expect_error=msg)
            for name, p, msg in images]
    out.append(Request("bad-image", "image-not-uploaded", {}, image="/etc/passwd", raw_image=True,
                       expect_error="image must be a file sent with gradio_client.handle_file"))
    return out


def random_shape(rng: random.Random) -> Request:
    """A random valid design, traced only; sometimes one with a known shape mismatch."""
    if rng.random() < 0.2:
        h, w = rng.choice([(225, 225), (225, 224), (800, 1333), (100, 100)])
        cfg = {"input_height": h, "input_width": w, "policy": "x2", "skip": rng.choice("ABCD")}
        return Request("shape", "mismatch-x2", cfg, expect_mismatch=True)
    block = rng.choice(["basic", "bottleneck"])
    base = rng.choice([16, 32, 64]) if block == "basic" else rng.choice([64, 128, 256])
    policy = rng.choice(["x2", "match", "pad"])
    if policy == "x2":
        h, w = 32 * rng.randint(1, 64), 32 * rng.randint(1, 64)
    else:
        h, w = rng.randint(32, 2048), rng.randint(32, 2048)
    if rng.random() < 0.05:
        h, w = rng.choice([(4096, 4096), (8192, 8192), (8192, 64)])
    cfg = {
        "input_height": h,
        "input_width": w,
        "widths": [base, base * 2, base * 4, base * 8],
        "blocks": [rng.randint(1, 4) for _ in range(4)],
        "block": block,
        "stride_in": rng.choice(["3x3", "1x1"]),
        **random_skip_and_neck(rng, policy, p7_chance=0.5),
    }
    if cfg["skip"] == "A" and cfg["stem_width"] > cfg["widths"][0]:
        # Option A zero-pads S(x): it cannot narrow stem -> layer1, a mismatch the report must name.
        return Request("shape", "mismatch-A-narrowing", cfg, expect_mismatch=True)
    return Request("shape", f"{block}-{policy}", cfg, expect_mismatch=False)


def random_skip_and_neck(rng: random.Random, policy: str, p7_chance: float) -> dict[str, Any]:
    """The skip option, stem width and FPN fields shared by random shape changes and runs."""
    p6 = rng.choice(["p5-conv", "c5-conv", "maxpool", "none"])
    return {
        "skip": rng.choice("ABCD"),
        "stem_width": rng.choice([16, 32, 64]),
        "fpn_from": rng.choice(["C2", "C3"]),
        "fpn_width": rng.choice([64, 128, 256]),
        "upsample": rng.choice(["nearest", "bilinear"]),
        "policy": policy,
        "p6": p6,
        "p7": p6 != "none" and rng.random() < p7_chance,
    }


def random_run(rng: random.Random) -> Request:
    """A small design with an example photo: a real forward (inputs 128-512)."""
    block = rng.choice(["basic", "basic", "bottleneck"])
    widths = rng.choice([[16, 32, 64, 128], [32, 64, 128, 256], [64, 128, 256, 512]])
    policy = rng.choice(["x2", "match", "pad"])
    h, w = (32 * rng.randint(4, 16), 32 * rng.randint(4, 16)) if policy == "x2" else \
        (rng.randint(128, 512), rng.randint(128, 512))
    cfg = {
        "input_height": h,
        "input_width": w,
        "widths": widths,
        "blocks": [rng.randint(1, 2) for _ in range(4)],
        "block": block,
        **random_skip_and_neck(rng, policy, p7_chance=0.3),
    }
    if cfg["skip"] == "A":  # option A cannot narrow the stem into layer1 (that would be a mismatch)
        cfg["stem_width"] = min(cfg["stem_width"], widths[0])
    if rng.random() < 0.2:  # repeat the reference design: exercises the model and activation caches
        cfg = {"input_height": 224, "input_width": 224}
    return Request("run", f"{block}-{policy}", cfg, image=str(rng.choice(EXAMPLES)))


def plan(total: int, seed: int, bad: list[Request]) -> list[Request]:
    """``total`` requests: every bad request at least once, the rest shapes, runs and bad ones mixed."""
    rng = random.Random(seed)
    reqs = list(bad[:total])
    while len(reqs) < total:
        x = rng.random()
        reqs.append(random_shape(rng) if x < 0.5 else random_run(rng) if x < 0.85 else rng.choice(bad))
    rng.shuffle(reqs)
    return reqs


# ---------------------------------------------------------------------------------------------
# Sending.


def send(client: Client, req: Request, timeout: float):
    image = None
    if req.image is not None:
        image = req.image if req.raw_image else handle_file(req.image)
    job = client.submit(req.config, image, api_name="/analyze")
    return job.result(timeout=timeout)


def judge(req: Request, send_once: Callable[[], Any], busy_retries: int) -> Outcome:
    start = time.perf_counter()
    tries = 0
    while True:
        try:
            result = send_once()
        except QueueError as err:
            # A refused bad request is retried so that every bad request still gets its message.
            if req.expect_error and tries < busy_retries:
                tries += 1
                time.sleep(0.5 * tries)
                continue
            return Outcome(req, time.perf_counter() - start, "busy", str(err))
        except AppError as err:
            msg = str(err)
            if req.expect_error and req.expect_error in msg:
                return Outcome(req, time.perf_counter() - start, "answered", msg)
            why = "generic error (not a readable gr.Error)" if GENERIC in msg else \
                f"error message lacks {req.expect_error!r}" if req.expect_error else "refused"
            return Outcome(req, time.perf_counter() - start, "unexpected", f"{why}: AppError: {msg}")
        except Exception as err:  # noqa: BLE001 - every other failure is a finding
            return Outcome(req, time.perf_counter() - start, "unexpected", f"{type(err).__name__}: {err}")
        seconds = time.perf_counter() - start
        if req.expect_error:
            return Outcome(req, seconds, "unexpected", f"answered {_short(result)} instead of refusing with "
                                                      f"{req.expect_error!r}")
        problem = check_report(req, result)
        return Outcome(req, seconds, "unexpected" if problem else "ok", problem or "")


def check_report(req: Request, report: Any) -> str | None:
    if not isinstance(report, dict) or "levels" not in report or "config" not in report:
        return f"not a report: {_short(report)}"
    for key, value in req.config.items():
        if report["config"].get(key) != value:
            return f"report config {key}={report['config'].get(key)!r}, sent {value!r}"
    if req.expect_mismatch is not None and (report.get("mismatch") is not None) != req.expect_mismatch:
        return f"mismatch expected {req.expect_mismatch}, report says {_short(report.get('mismatch'))}"
    if req.category == "run":
        stats, levels = report.get("stats"), report.get("levels")
        if not isinstance(stats, dict) or set(stats) != set(levels):
            return f"run report without stats for every level: {_short(stats)}"
        if not report.get("run", {}).get("image_size"):
            return f"run report without run.image_size: {_short(report.get('run'))}"
    return None


def _short(x: Any, n: int = 160) -> str:
    s = repr(x)
    return s if len(s) <= n else s[:n] + "…"


# ---------------------------------------------------------------------------------------------
# The server.


def start_server(env: dict[str, str], log_path: Path, timeout: float) -> tuple[subprocess.Popen, str]:
    proc, url, _ = serve.start(log_path, env=env, timeout=timeout, poll=0.3)
    return proc, url


stop_server = serve.stop


def memory_budget(budget_mb: float | None) -> tuple[int, str]:
    if budget_mb:
        return int(budget_mb * 2**20), f"RESFPN_MEMORY_BUDGET_MB={budget_mb:g}"
    return Limits.from_env().memory_budget, "resfpn.serving.limits.Limits.from_env()"


def estimate(report: dict) -> int:
    """The server's own estimate for a run of the report's configuration (``resfpn.serving.limits.memory_estimate``)."""
    return memory_estimate(cached_trace(Config.from_dict(report["config"])))


def pick_guard(client: Client, budget: int) -> tuple[dict | None, int]:
    """The smallest candidate design whose forward the server's memory guard must refuse."""
    wide = {"widths": [2048] * 4, "blocks": [16] * 4, "block": "bottleneck", "stem_width": 2048,
            "fpn_width": 2048, "policy": "match"}
    candidates = [R50 | {"input_height": s, "input_width": s} for s in (1024, 1536, 2048)]
    candidates += [wide | {"input_height": s, "input_width": s} for s in (1024, 2048)]
    for cfg in candidates:
        need = estimate(client.predict(cfg, None, api_name="/analyze"))
        if need > budget:  # the server's own rule (resfpn.serving.limits.Limits.check_run)
            return cfg, need
    return None, 0


# ---------------------------------------------------------------------------------------------
# Report.


def server_problems(log_path: Path) -> list[str]:
    """Tracebacks in the server log, one line each (their last line)."""
    lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    found, in_tb = [], False
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            in_tb = True
        elif in_tb and line and not line.startswith((" ", "\t")) and not line.startswith("During handling"):
            if not line.startswith(("The above exception", "Traceback")):
                found.append(line.strip())
                in_tb = False
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=8, help="concurrent gradio_client clients (threads)")
    ap.add_argument("--requests", type=int, default=20, help="requests per client")
    ap.add_argument("--seed", type=int, default=0, help="seed of the request mix")
    ap.add_argument("--queue-size", type=int, default=None,
                    help="RESFPN_QUEUE_SIZE for the server (default: the environment's, else the app's)")
    ap.add_argument("--budget-mb", type=float, default=512,
                    help="RESFPN_MEMORY_BUDGET_MB for the server; 0 keeps the environment's or the default")
    ap.add_argument("--request-timeout", type=float, default=180, help="seconds one request may take")
    ap.add_argument("--time-limit", type=float, default=900, help="seconds for the whole load phase")
    ap.add_argument("--server-log", type=Path, default=None, help="where the server's output goes")
    args = ap.parse_args(argv)
    if args.clients < 1 or args.requests < 1:
        ap.error("--clients and --requests must be at least 1")

    env = dict(os.environ)
    if args.queue_size is not None:
        env["RESFPN_QUEUE_SIZE"] = str(args.queue_size)
    if args.budget_mb:
        env["RESFPN_MEMORY_BUDGET_MB"] = f"{args.budget_mb:g}"
    queue_size = env.get("RESFPN_QUEUE_SIZE")
    budget, budget_from = memory_budget(args.budget_mb or None)
    tmp = Path(tempfile.mkdtemp(prefix="resfpn-load-"))
    log_path = args.server_log or Path(tempfile.gettempdir()) / f"resfpn-load-test-server-{os.getpid()}.log"
    total = args.clients * args.requests
    print(f"resfpn load test: {args.clients} clients x {args.requests} requests = {total}, seed {args.seed}, "
          f"queue size {queue_size or 'app default'}, memory budget {mib(budget)} ({budget_from})")

    proc = None
    try:
        t0 = time.perf_counter()
        proc, url = start_server(env, log_path, timeout=180)
        print(f"server: pid {proc.pid} on {url} (up in {time.perf_counter() - t0:.1f} s), log {log_path}")
        probe = Client(url, verbose=False)
        guard, guard_need = pick_guard(probe, budget)
        # The app loads torch after it starts serving: measure growth from a warmed-up server
        # (one tiny run), so the figure is the model work the budget is meant to bound.
        probe.predict({"input_height": 32, "input_width": 32}, handle_file(str(EXAMPLES[0])), api_name="/analyze")
        baseline = proc_status(proc.pid)
        sampler = MemorySampler(proc.pid)
        sampler.start()
        if guard:
            print(f"memory guard case: {guard['block']} widths {guard['widths']} at {guard['input_height']}"
                  f"x{guard['input_width']} needs about {mib(guard_need)} > budget {mib(budget)}")
        else:
            print("memory guard case: none of the candidates exceeds the budget; not exercised")
        bad = bad_requests(tmp, guard, str(EXAMPLES[0]))
        reqs = plan(total, args.seed, bad)
        if total < len(bad):
            print(f"note: only {total} requests, so {len(bad) - total} of the {len(bad)} bad requests are not sent")

        outcomes: list[Outcome] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + args.time_limit
        connect_errors: list[str] = []

        def worker(k: int) -> None:
            try:
                client = Client(url, verbose=False)
            except Exception as err:  # noqa: BLE001
                with lock:
                    connect_errors.append(f"client {k}: {type(err).__name__}: {err}")
                return
            for req in reqs[k::args.clients]:
                if time.monotonic() > stop_at:
                    return
                out = judge(req, lambda: send(client, req, args.request_timeout), busy_retries=5)
                with lock:
                    outcomes.append(out)

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(args.clients)]
        t_load = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=max(0.0, stop_at - time.monotonic()) + args.request_timeout + 5)
        wall = time.perf_counter() - t_load
        hung = sum(t.is_alive() for t in threads)
        sampler.stop()

        # -- after the load: does it still answer normally? -----------------------------------------
        after = []
        try:
            c = Client(url, verbose=False)
            r = c.predict({}, None, api_name="/analyze")
            after.append(("trace of the reference design", r.get("mismatch") is None and "levels" in r))
            r = c.predict({"input_height": 160, "input_width": 192}, handle_file(str(EXAMPLES[-1])),
                          api_name="/analyze")
            after.append(("run of an example photo at 160x192", set(r.get("stats", {})) == set(r["levels"])))
        except Exception as err:  # noqa: BLE001
            after.append((f"{type(err).__name__}: {err}", False))
        alive = proc.poll() is None
        final = proc_status(proc.pid)
    finally:
        if proc is not None:
            stop_server(proc)
        shutil.rmtree(tmp, ignore_errors=True)

    # -- report ---------------------------------------------------------------------------------
    sent = {c: 0 for c in CATEGORIES}
    by = {c: {"ok": 0, "answered": 0, "busy": 0, "unexpected": 0} for c in CATEGORIES}
    lat: dict[str, list[float]] = {c: [] for c in CATEGORIES}
    for o in outcomes:
        c = o.request.category
        sent[c] += 1
        by[c][o.status] += 1
        if o.status != "busy":
            lat[c].append(o.seconds)
    mismatches = sum(1 for o in outcomes if o.request.expect_mismatch and o.status == "ok")
    print(f"\nload: {len(outcomes)} of {total} requests done in {wall:.1f} s "
          f"({len(outcomes) / wall:.1f} req/s){f', {hung} client thread(s) still running' if hung else ''}")
    print(f"{'category':<11}{'sent':>6}{'ok':>6}{'answered':>10}{'busy':>6}{'unexpected':>12}"
          f"{'p50 s':>9}{'p95 s':>9}{'max s':>9}")
    every = []
    for c in CATEGORIES:
        every += lat[c]
        b = by[c]
        print(f"{c:<11}{sent[c]:>6}{b['ok']:>6}{b['answered']:>10}{b['busy']:>6}{b['unexpected']:>12}"
              f"{percentile(lat[c], 50):>9.3f}{percentile(lat[c], 95):>9.3f}{max(lat[c], default=float('nan')):>9.3f}")
    tot = {k: sum(by[c][k] for c in CATEGORIES) for k in ("ok", "answered", "busy", "unexpected")}
    print(f"{'all':<11}{len(outcomes):>6}{tot['ok']:>6}{tot['answered']:>10}{tot['busy']:>6}{tot['unexpected']:>12}"
          f"{percentile(every, 50):>9.3f}{percentile(every, 95):>9.3f}{max(every, default=float('nan')):>9.3f}")
    print(f"(shape answers with the expected mismatch set: {mismatches}; latency excludes busy answers)")

    unexpected = [o for o in outcomes if o.status == "unexpected"]
    small_queue = queue_size is not None and int(queue_size) < args.clients
    if tot["busy"]:
        print(f"busy (Queue is full): {tot['busy']} — "
              f"{'expected: the queue is smaller than the number of clients' if small_queue else 'NOT expected with this queue size'}")
    print(f"\nunexpected errors: {len(unexpected) + len(connect_errors)}")
    for e in connect_errors:
        print(f"  - {e}")
    for o in sorted(unexpected, key=lambda o: (o.request.category, o.request.name)):
        print(f"  - [{o.request.category}/{o.request.name}] config={_short(o.request.config, 120)}"
              f"{' image=' + Path(o.request.image).name if o.request.image else ''}: {o.detail}")

    sent_bad = {o.request.name for o in outcomes if o.request.expect_error}
    missing = sorted(sent_bad - {o.request.name for o in outcomes if o.status == "answered"})
    print(f"\nbad requests: {len(sent_bad)} of {len(bad)} kinds sent, {len(sent_bad) - len(missing)} of them got "
          f"their message" + (f"; without it: {', '.join(missing)}" if missing else ""))

    peak_hwm = max(sampler.peak_hwm, final.get("VmHWM", 0))
    base = baseline.get("VmRSS", 0)
    print(f"\nserver memory: VmRSS {mib(base)} when warmed up; peak VmHWM {mib(peak_hwm)} "
          f"(sampled {sampler.samples}x, at the end {mib(final.get('VmHWM', 0))}); growth under load "
          f"{mib(peak_hwm - base)} vs memory budget {mib(budget)} "
          f"({'within' if peak_hwm - base <= budget else 'ABOVE'} it; the budget bounds model work: cached models "
          f"and activations plus one forward)")

    print("\nafter the load:")
    for what, good in after:
        print(f"  {'ok  ' if good else 'FAIL'} {what}")
    print(f"  {'ok  ' if alive else 'FAIL'} server process alive until stopped")
    tracebacks = server_problems(log_path)
    refusals = [p for p in tracebacks if p.startswith("gradio.exceptions.Error")]
    problems = [p for p in tracebacks if p not in refusals]
    print(f"server log: {len(tracebacks)} traceback(s): {len(refusals)} of them gr.Error refusals (gradio logs "
          f"those), {len(problems)} other exception(s)" + "".join(f"\n  - {p}" for p in problems[:20]))

    reasons = failures(growth=peak_hwm - base, budget=budget, server_tracebacks=problems, alive=alive,
                       unexpected=len(unexpected) + len(connect_errors), missing=missing, hung=hung,
                       after_ok=all(g for _, g in after), busy=bool(tot["busy"] and not small_queue),
                       done=len(outcomes), total=total)
    for why in reasons:
        print(f"FAIL: {why}")
    print(f"\nresult: {'FAIL' if reasons else 'PASS'}")
    return 1 if reasons else 0


def failures(growth: int, budget: int, server_tracebacks: list[str], alive: bool, unexpected: int,
             missing: list[str], hung: int, after_ok: bool, busy: bool, done: int, total: int) -> list[str]:
    """Why the load test fails ([] when it passes): each condition the exit status stands for."""
    checks = [
        (done < total, f"cut short: {done} of {total} requests answered before the time limit"),
        (growth > budget, f"peak memory growth {mib(growth)} above the budget {mib(budget)}"),
        (bool(server_tracebacks), f"{len(server_tracebacks)} server traceback(s) that are not gr.Error refusals"),
        (not alive, "the server died"),
        (unexpected > 0, f"{unexpected} unexpected answer(s)"),
        (bool(missing), f"bad requests without their message: {', '.join(missing)}"),
        (hung > 0, f"{hung} client thread(s) still running"),
        (not after_ok, "the server did not answer normally after the load"),
        (busy, "'Queue is full' with a queue larger than the number of clients"),
    ]
    return [why for failed, why in checks if failed]


if __name__ == "__main__":
    sys.exit(main())
