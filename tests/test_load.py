"""A short run of the load test (scripts/load_test.py) against `python app.py`, and its verdict."""

from scripts import load_test

GOOD = dict(growth=100 * 2**20, budget=512 * 2**20, server_tracebacks=[], alive=True, unexpected=0, missing=[],
            hung=0, after_ok=True, busy=False)


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
