"""The hostile corpus: every case refused with a bounded PackingError, cheaply, in a child process.

Each kind runs in its own child (``run_cases.py``) with its address space capped at what it
holds plus 200 MB and its CPU time capped; the child measures each call's CPU time and the
growth of its peak resident set. The child runs with the same ``-O`` flag as this test, so the
``optimized`` tox environment checks the corpus under ``python -O`` too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from corpus import MAX_MESSAGE, cases

HERE = Path(__file__).resolve().parent
KINDS = {
    1: "rank bombs",
    2: "zero-width strings",
    3: "receiver-side allocation",
    4: "options injection through composition",
    5: "Message API split",
    6: "errors outside the model",
    7: "looser gaps",
}
#: CPU seconds one refusal may take, measured in the child.
MAX_CPU = 1.0
#: Growth of the child's peak resident set over the cases, in bytes.
MAX_RSS_GROWTH = 200 << 20

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="uses RLIMIT_AS and /proc (Linux)"
)


def test_the_corpus_spans_every_kind_with_a_few_hundred_cases() -> None:
    corpus = cases()
    assert len(corpus) >= 300
    assert {case.kind for case in corpus} == set(KINDS)
    assert len({case.id for case in corpus}) == len(corpus)


def _run_kind(kind: int, *ids: str) -> tuple[list[dict[str, Any]], str | None, str]:
    flags = ["-O"] if sys.flags.optimize else []
    proc = subprocess.run(
        [sys.executable, *flags, str(HERE / "run_cases.py"), str(kind), *ids],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    results: list[dict[str, Any]] = []
    started: str | None = None
    done = False
    for line in proc.stdout.splitlines():
        row = json.loads(line)
        if "start" in row:
            started = row["start"]
        elif "done" in row:
            done = True
        else:
            results.append(row)
            started = None
    if not done or proc.returncode != 0:
        return results, started or "(before the first case)", proc.stderr[-2000:]
    return results, None, ""


def _problems(results: list[dict[str, Any]], lookup: set[str]) -> dict[str, str]:
    """``case id -> what is wrong`` for every result that breaks a rule."""
    problems = {}
    for r in results:
        why = []
        if "build_error" in r:
            why.append(f"could not build: {r['build_error']}")
        elif not r.get("packing"):
            why.append(f"raised {r.get('types', [])[:1] or 'nothing'}: {r.get('message')}")
        else:
            if not r["matches"]:
                why.append(f"unexpected message: {r['message']}")
            if r["length"] > MAX_MESSAGE:
                why.append(f"message of {r['length']} characters")
            if r["id"] in lookup and not r["lookup"]:
                why.append("not a LookupError")
        if r.get("cpu", 0.0) >= MAX_CPU:
            why.append(f"took {r['cpu']:.2f} s of CPU")
        if r["rss_growth"] >= MAX_RSS_GROWTH:
            why.append(f"peak RSS grew by {r['rss_growth'] >> 20} MB")
        if why:
            problems[r["id"]] = "; ".join(why)
    return problems


@pytest.mark.parametrize("kind", sorted(KINDS), ids=[KINDS[k].replace(" ", "-") for k in KINDS])
def test_every_hostile_case_is_refused_cheaply(kind: int) -> None:
    expected = [case for case in cases() if case.kind == kind]
    lookup = {case.id for case in expected if case.lookup}
    results, crashed, stderr = _run_kind(kind)
    assert crashed is None, f"the child died in case {crashed!r}: {stderr}"
    assert [r["id"] for r in results] == [case.id for case in expected]
    problems = _problems(results, lookup)
    assert not problems, "\n".join(f"{case}: {why}" for case, why in problems.items())


def test_the_harness_names_each_broken_rule_and_the_case_that_killed_the_child() -> None:
    ids = ["self-accepted", "self-wrong-type", "self-memory", "self-cpu"]
    results, crashed, _ = _run_kind(0, *ids)
    assert crashed is None
    problems = _problems(results, set())
    assert sorted(problems) == sorted(ids)
    assert "raised nothing" in problems["self-accepted"]
    assert "raised ['KeyError']" in problems["self-wrong-type"]
    assert "MemoryError" in problems["self-memory"]  # the address-space limit held
    assert "s of CPU" in problems["self-cpu"]
    results, crashed, _ = _run_kind(0, "self-crash")
    assert crashed == "self-crash"
    assert results == []
