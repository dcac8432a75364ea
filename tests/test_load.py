"""A short run of the load test (scripts/load_test.py) against `python app.py`, and its verdict."""

from scripts import load_test

GOOD = dict(growth=100 * 2**20, budget=512 * 2**20, server_tracebacks=[], alive=True, unexpected=0, missing=[],
            hung=0, after_ok=True, busy=False, done=10, total=10)


def test_short_load_test_passes(capsys):
    status = load_test.main(["--clients", "2", "--requests", "5", "--seed", "1", "--time-limit", "120"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "result: PASS" in out and "unexpected errors: 0" in out and "server memory:" in out


def test_verdict_fails_on_memory_tracebacks_and_a_dead_server():
    assert load_test.failures(**GOOD) == []
    assert load_test.failures(**GOOD | {"growth": 513 * 2**20}) == [
        "peak memory growth 513 MiB above the budget 512 MiB"]
    assert load_test.failures(**GOOD | {"server_tracebacks": ["KeyError: 'x'"]}) == [
        "1 server traceback(s) that are not gr.Error refusals"]
    assert load_test.failures(**GOOD | {"alive": False}) == ["the server died"]
    assert load_test.failures(**GOOD | {"done": 7}) == ["cut short: 7 of 10 requests answered before the time limit"]


def test_a_load_test_cut_short_by_its_time_limit_fails(capsys):
    """The real route: the clients stop at the time limit, so the run must not pass."""
    status = load_test.main(["--clients", "1", "--requests", "40", "--seed", "1", "--time-limit", "0.5"])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "FAIL: cut short:" in out and "result: FAIL" in out
