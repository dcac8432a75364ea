"""The commands and examples in README.md and docs/ are run, so they stay true.

- ``console`` blocks: each ``$ `` line runs in bash in one scratch folder per document (``python`` is this
  interpreter, with the repository importable); the lines shown under a command must appear in its
  output in that order (a shown line ending in ``...`` is a prefix; a line ``...`` alone skips any
  output). The exit status is 0 unless the command's comment says ``exit status N``. A command whose
  comment says ``needs the network`` is not run here (these machines reach no weights host): the
  download code it drives is tested against local stand-ins in ``tests/test_pretrained.py``.
- ``python`` blocks written as ``>>>`` sessions run as doctests.

A page whose examples talk to the app (``http://127.0.0.1:7860/``) runs them against ``python app.py``
served for the tests, with that address replaced by the served one.
"""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
STATUS = re.compile(r"#.*exit status (\d+)")


def blocks(path: Path, kind: str) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text(encoding="utf-8")) if lang == kind]


def commands(block: str) -> list[tuple[str, list[str]]]:
    """``[(command, shown output lines), ...]`` of one console block."""
    runs: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            runs.append((line[2:], []))
        elif runs:
            runs[-1][1].append(line.rstrip())
    return runs


def shown_in(shown: list[str], output: str) -> str | None:
    """None when every shown line appears in ``output`` in order, else the first that does not."""
    lines = [line.rstrip() for line in output.splitlines()]
    at = 0
    for want in shown:
        if want in ("", "..."):
            continue
        prefix = want.endswith("...")
        want = want[:-3].rstrip() if prefix else want
        for i in range(at, len(lines)):
            if (lines[i].startswith(want) if prefix else lines[i] == want):
                at = i + 1
                break
        else:
            return want
    return None


APP_URL = "http://127.0.0.1:7860/"


def served(text: str, request) -> str:
    """``text`` with the app's documented address replaced by the one served for the tests."""
    return text.replace(APP_URL, request.getfixturevalue("served_app")) if APP_URL in text else text


CONSOLE_DOCS = [p for p in DOCS if blocks(p, "console")]


@pytest.mark.parametrize("doc", CONSOLE_DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_console_examples_run_as_shown(doc, tmp_path, request):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python"  # a wrapper, not a link: a venv's python finds its packages from its own path
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
           "HF_HUB_OFFLINE": "1"}
    ran = 0
    for block in blocks(doc, "console"):
        for command, shown in commands(block):
            if "needs the network" in command:
                continue
            status = STATUS.search(command)
            done = subprocess.run(["bash", "-c", served(command, request)], cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=300)
            assert done.returncode == (int(status.group(1)) if status else 0), (command, done.stdout, done.stderr)
            missing = shown_in(shown, done.stdout + done.stderr)
            assert missing is None, f"{doc.name}: `{command}` did not print {missing!r}:\n{done.stdout}{done.stderr}"
            ran += 1
    assert ran, f"{doc.name} has console blocks but no command ran"


DOCTEST_DOCS = [p for p in DOCS if any(">>> " in b for b in blocks(p, "python"))]


@pytest.mark.parametrize("doc", DOCTEST_DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_examples_run_as_shown(doc, request, monkeypatch):
    monkeypatch.chdir(ROOT)  # examples name files as a user in the repository would (assets/...)
    text = served("\n".join(b for b in blocks(doc, "python") if ">>> " in b), request)
    test = doctest.DocTestParser().get_doctest(text, {}, doc.name, str(doc), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted and not result.failed


def test_shown_in_reads_the_conventions():
    output = "a\nb: 1\nc\nd\n"
    assert shown_in(["a", "...", "c"], output) is None
    assert shown_in(["b:..."], output) is None
    assert shown_in(["c", "a"], output) == "a"  # order matters
    assert shown_in(["b"], output) == "b"  # a whole line, not a prefix, unless it ends in ...
