"""The plugin chapter quotes examples/fedpack-int8 line for line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "CONTRIBUTING.md"
BLOCK = re.compile(r"```\w+\n# file: (\S+)\n(.*?)```", re.DOTALL)


def quotes() -> list[tuple[str, str]]:
    return BLOCK.findall(CHAPTER.read_text(encoding="utf-8"))


def test_the_chapter_quotes_files() -> None:
    assert len(quotes()) >= 6


@pytest.mark.parametrize(("path", "text"), quotes(), ids=[p for p, _ in quotes()])
def test_each_quote_matches_the_example(path: str, text: str) -> None:
    source = (ROOT / path).read_text(encoding="utf-8")
    assert text.strip("\n") in source, f"CONTRIBUTING.md is out of date with {path}"
