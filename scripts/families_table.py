"""Print the table of tool-call families from `litellm_llamafile.reply.families` (the one table both reply
parsers use), so the docs say what the code does: `python scripts/families_table.py` prints it;
`python scripts/families_table.py --write` puts it into docs/families.md between its markers.
tests/test_families.py checks docs/families.md holds exactly this output."""

from __future__ import annotations

import argparse
from pathlib import Path

from litellm_llamafile.reply.families import FAMILIES, REASONING, Family

BEGIN = "<!-- families table: python scripts/families_table.py --write -->"
END = "<!-- end of families table -->"
DOC = Path(__file__).resolve().parent.parent / "docs" / "families.md"


def _code(text: str) -> str:
    inner = text.replace("|", "\\|").replace("\n", "\\n")
    return f"`` {inner} ``" if "`" in inner else f"`{inner}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _row(family: Family) -> str:
    detected = ", ".join(_code(h) for h in family.template_hints) or "—"
    rendered = ", ".join(family.templates) or "—"
    opens = " / ".join(_code(o) for o in family.openers)
    block = opens + (" … " + " / ".join(_code(c) for c in family.closes) if family.closes else " … its calls")
    cells = (family.name, family.models, detected, rendered, block, family.body)
    return "| " + " | ".join(_cell(c) if i in (1, 5) else c for i, c in enumerate(cells)) + " |"


def families_table() -> str:
    rows = [
        BEGIN,
        "| family | models | detected when the template has | renders natively (llama.cpp templates) "
        "| reply block | read as |",
        "|---|---|---|---|---|---|",
        *(_row(f) for f in FAMILIES),
        "| (reasoning) | thinking models | a think opener in the template | — | "
        + ", ".join(f"{_code(o)} … {_code(c[0])}" for o, c in REASONING.items())
        + " | `message.reasoning_content`; a call may end a `<think>` block"
        " (Qwen3.5, GLM, DeepSeek, Kimi K2) |",
        END,
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"replace the table in {DOC}")
    args = parser.parse_args()
    table = families_table()
    if not args.write:
        print(table)
        return
    text = DOC.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    DOC.write_text(text[:start] + table + text[end:])


if __name__ == "__main__":
    main()
