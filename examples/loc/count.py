"""Count the non-blank code lines (no comments, no docstrings) of the two SCAFFOLD apps."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

HERE = Path(__file__).parent


def code_lines(path: Path) -> int:
    """Lines holding code: not blank, not only a comment, not part of a docstring."""
    source = path.read_text(encoding="utf-8")
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings.update(range(body[0].lineno, (body[0].end_lineno or 0) + 1))
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in (
            tokenize.COMMENT,
            tokenize.NL,
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.DEDENT,
            tokenize.ENDMARKER,
        ):
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


if __name__ == "__main__":
    flower = code_lines(HERE / "scaffold_flower.py")
    fedpack = code_lines(HERE / "scaffold_fedpack.py")
    print(
        f"SCAFFOLD ServerApp + ClientApp, non-blank code lines: Flower alone {flower}, "
        f"with fedpack {fedpack} ({fedpack / flower:.0%})"
    )
