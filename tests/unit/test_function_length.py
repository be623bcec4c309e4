"""No product function over 80 lines (issue 29): ruff has no line-count rule, so this walks the AST.

Ruff bounds cyclomatic complexity (C901, 20) and statements (PLR0915, 50) in pyproject.toml; this
test bounds the length of every function and method of the five product packages, from its
``def`` line to its last line (docstring and comments included, decorators not).

``NOT_YET_SPLIT`` lists the functions still over the bound when the rule arrived, with their
length then: each may shrink but not grow, and one that is split must leave the list (the test
fails while it is listed under the bound), so the list only ever gets shorter.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = (
    "videojobs",
    "videojobs_cli",
    "operator/videojobs_operator",
    "job_image/videojobs_worker",
    "gateway/videojobs_gateway",
)
MAX_LINES = 80

NOT_YET_SPLIT: dict[str, int] = {}


def _functions(tree: ast.AST, prefix: str = "") -> list[tuple[str, ast.AST]]:
    found: list[tuple[str, ast.AST]] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{node.name}"
            found.append((name, node))
            found += _functions(node, f"{name}.")
        elif isinstance(node, ast.ClassDef):
            found += _functions(node, f"{prefix}{node.name}.")
        else:
            found += _functions(node, prefix)
    return found


def function_lengths() -> dict[str, int]:
    """``path::Qualified.name`` -> lines, for every function of the product packages."""
    lengths: dict[str, int] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            for name, node in _functions(ast.parse(path.read_text(encoding="utf-8"))):
                assert node.end_lineno is not None
                lengths[f"{rel}::{name}"] = node.end_lineno - node.lineno + 1  # type: ignore[attr-defined]
    return lengths


def test_the_walk_sees_every_package() -> None:
    lengths = function_lengths()
    for package in PACKAGES:
        assert any(key.startswith(f"{package}/") for key in lengths), package
    assert lengths["videojobs_cli/main.py::main"] < MAX_LINES


def test_no_product_function_is_over_80_lines() -> None:
    lengths = function_lengths()
    over = {
        name: lines
        for name, lines in lengths.items()
        if lines > MAX_LINES and lines > NOT_YET_SPLIT.get(name, 0)
    }
    assert not over, "functions over 80 lines (split them into named steps): " + ", ".join(
        f"{name} ({lines} lines)" for name, lines in sorted(over.items())
    )


def test_the_not_yet_split_list_only_shrinks() -> None:
    lengths = function_lengths()
    stale = [name for name in NOT_YET_SPLIT if name not in lengths or lengths[name] <= MAX_LINES]
    assert not stale, f"now within {MAX_LINES} lines (or gone): remove from NOT_YET_SPLIT: {stale}"
