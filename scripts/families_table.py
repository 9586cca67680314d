"""Print the table of tool-call families from `litellm_llamafile.reply.families` (the one table both reply
parsers use) for docs/families.md, so the docs say what the code does: `python scripts/families_table.py`.
tests/test_families.py checks the page holds exactly this output."""

from __future__ import annotations

from litellm_llamafile.reply.families import FAMILIES, REASONING

BEGIN = "<!-- families table: python scripts/families_table.py -->"
END = "<!-- end of families table -->"


def _code(text: str) -> str:
    inner = text.replace("|", "\\|").replace("\n", "\\n")
    return f"`` {inner} ``" if "`" in inner else f"`{inner}`"


def families_table() -> str:
    rows = [
        BEGIN,
        "| family | expected when the template has | reply block | body read as |",
        "|---|---|---|---|",
    ]
    for family in FAMILIES:
        hints = ", ".join(_code(h) for h in family.template_hints) or "—"
        block = _code(family.opens) + (
            " … " + " / ".join(_code(c) for c in family.closes) if family.closes else " … end of reply"
        )
        summary = " ".join((family.parse.__doc__ or "").split("\n\n")[0].split()).replace("|", "\\|")
        rows.append(f"| {family.name} | {hints} | {block} | {summary} |")
    rows.append(
        "| (reasoning) | a think opener in the template | "
        + ", ".join(f"{_code(o)} … {_code(c[0])}" for o, c in REASONING.items())
        + " | `message.reasoning_content`, never parsed for calls |"
    )
    rows.append(END)
    return "\n".join(rows)


if __name__ == "__main__":
    print(families_table())
