"""List the functions over 60 lines and the classes over 150 in a folder (docstrings included): the
"too big to hold in mind" check of issue 13.

    python scripts/unit_sizes.py [FOLDER] [--function 60] [--class 150]
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def oversized(root: Path, function_limit: int, class_limit: int) -> list[str]:
    rows = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            limit = class_limit if isinstance(node, ast.ClassDef) else function_limit
            if lines > limit:
                kind = "class" if isinstance(node, ast.ClassDef) else "def"
                rows.append(f"{path}:{node.lineno} {kind} {node.name}: {lines} lines")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="litellm_llamafile", type=Path)
    parser.add_argument("--function", type=int, default=60)
    parser.add_argument("--class", dest="klass", type=int, default=150)
    args = parser.parse_args()
    rows = oversized(args.folder, args.function, args.klass)
    print("\n".join(rows) if rows else "no unit over the limits")
    return 1 if rows else 0


if __name__ == "__main__":
    sys.exit(main())
