"""Realistic agent conversations with tools, for the token-count benchmark.

Two scripted agent runs (a coding agent and a research agent), each a system prompt, a user task, then
turns of assistant tool calls (single and parallel), tool results, assistant prose and user follow-ups,
50 messages long. A benchmark takes prefixes of a run at "request points": lengths where the last
message is a user turn or the last of a batch of tool results, i.e. where an agent would send a request.
Messages are short so that 50 of them plus the tool instructions fit SmolLM2's 2048-token context.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Message = dict[str, Any]
Tool = dict[str, Any]


def _tool(name: str, description: str, **properties: str) -> Tool:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {k: {"type": "string", "description": v} for k, v in properties.items()},
                "required": list(properties),
            },
        },
    }


CODING_TOOLS = [
    _tool("read_file", "Read a text file of the repository.", path="File path"),
    _tool("write_file", "Replace a file's content.", path="File path", content="New content"),
    _tool("run_shell", "Run a shell command and return its output.", command="The command"),
    _tool("finish", "End the task with a summary.", summary="What was done"),
]

RESEARCH_TOOLS = [
    _tool("web_search", "Search the web and return the top results.", query="What to search for"),
    _tool("fetch_page", "Fetch a web page as plain text.", url="The page URL"),
    _tool("save_note", "Save a note for the final report.", text="The note"),
    _tool("finish", "End the task with a final answer.", answer="The answer"),
]


@dataclass(frozen=True)
class Run:
    name: str
    tools: list[Tool]
    messages: list[Message]

    def request_points(self) -> list[int]:
        """Prefix lengths at which an agent sends a request (the next message is the assistant's)."""
        points = []
        for n in range(2, len(self.messages) + 1):
            last = self.messages[n - 1]["role"]
            following = self.messages[n]["role"] if n < len(self.messages) else "assistant"
            if last in ("user", "tool") and following == "assistant":
                points.append(n)
        return points

    def sizes(self, wanted: list[int]) -> list[int]:
        """For each wanted length, the longest request point not above it (deduplicated, ascending)."""
        points = self.request_points()
        chosen = {max((p for p in points if p <= w), default=points[0]) for w in wanted}
        return sorted(chosen)


class _Builder:
    def __init__(self, system: str, task: str) -> None:
        self.messages: list[Message] = [
            {"role": "system", "content": system},
            {"role": "user", "content": task},
        ]
        self._ids = (f"call_{i:03d}" for i in range(1, 1000))

    def calls(self, *calls: tuple[str, dict[str, str], str], say: str | None = None) -> None:
        """An assistant turn making these calls (optionally with prose), then one result per call."""
        batch = [(next(self._ids), name, args, result) for name, args, result in calls]
        self.messages.append(
            {
                "role": "assistant",
                "content": say,
                "tool_calls": [
                    {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
                    for cid, name, args, _ in batch
                ],
            }
        )
        for cid, _, _, result in batch:
            self.messages.append({"role": "tool", "tool_call_id": cid, "content": result})

    def reply(self, text: str, follow_up: str) -> None:
        self.messages.append({"role": "assistant", "content": text})
        self.messages.append({"role": "user", "content": follow_up})


def coding_run() -> Run:
    b = _Builder(
        "You are a coding agent in a Python repository. Use the tools; keep answers short.",
        "tests/test_dates.py::test_parse_iso fails. Find the cause, fix it, run the tests.",
    )
    b.calls(("run_shell", {"command": "pytest -q tests/test_dates.py"}, "F.. 1 failed: 2024-02-30 accepted"))
    b.calls(
        ("read_file", {"path": "src/dates.py"}, "def parse_iso(s):\n    y, m, d = map(int, s.split('-'))")
    )
    b.calls(
        ("read_file", {"path": "tests/test_dates.py"}, "assert parse_iso('2024-02-30') is None"),
        ("run_shell", {"command": "git log -1 --oneline"}, "a1b2c3 Speed up parse_iso"),
        say="Reading the test and the last change.",
    )
    b.reply("parse_iso never checks the day against the month.", "Use calendar.monthrange, please.")
    b.calls(("write_file", {"path": "src/dates.py", "content": "import calendar\n# day check added"}, "ok"))
    b.calls(("run_shell", {"command": "pytest -q tests/test_dates.py"}, "... 3 passed in 0.02s"))
    b.reply("Fixed: days beyond the month's length are rejected.", "Also reject month 13 and run ruff.")
    b.calls(("read_file", {"path": "src/dates.py"}, "import calendar\ndef parse_iso(s): ..."))
    b.calls(
        ("write_file", {"path": "src/dates.py", "content": "if not 1 <= m <= 12: return None"}, "ok"),
        (
            "write_file",
            {"path": "tests/test_dates.py", "content": "assert parse_iso('2024-13-01') is None"},
            "ok",
        ),
    )
    b.calls(("run_shell", {"command": "ruff check src tests"}, "src/dates.py:1:1: I001 unsorted imports"))
    b.calls(("run_shell", {"command": "ruff check --fix src tests"}, "Found 1 error (1 fixed)."))
    b.calls(("run_shell", {"command": "pytest -q"}, "....... 7 passed in 0.05s"))
    b.reply("Month 13 is rejected and ruff is clean.", "Great. What about 'é' or spaces in input?")
    b.calls(("run_shell", {"command": "python -c \"print(parse_iso(' 2024-01-01'))\""}, "None"))
    b.calls(
        ("read_file", {"path": "README.md"}, "# dates\nparse_iso(s) -> date | None. Strict ISO 8601."),
        ("run_shell", {"command": "grep -rn strip src"}, "(no output)"),
    )
    b.reply("Input is not stripped; README says strict, so that is right.", "OK. Add a test for it.")
    b.calls(
        ("write_file", {"path": "tests/test_dates.py", "content": "assert parse_iso(' 2024') is None"}, "ok")
    )
    b.calls(("run_shell", {"command": "pytest -q"}, "........ 8 passed in 0.05s"))
    b.calls(
        ("run_shell", {"command": "git diff --stat"}, " src/dates.py | 4 ++--\n tests/test_dates.py | 6 ++++")
    )
    b.reply("All 8 tests pass.", "Commit it with a clear message.")
    b.calls(("run_shell", {"command": "git commit -am 'Validate month and day'"}, "[main d4e5f6] 2 files"))
    b.calls(
        ("run_shell", {"command": "git status --short"}, "(clean)"),
        ("run_shell", {"command": "git log -1 --format=%s"}, "Validate month and day"),
    )
    return Run("coding agent", CODING_TOOLS, b.messages)  # fmt: skip


def research_run() -> Run:
    b = _Builder(
        "You are a research assistant. Use the tools, cite sources, answer in one paragraph.",
        "What were Roman dodecahedrons used for? Give the main theories.",
    )
    b.calls(
        (
            "web_search",
            {"query": "Roman dodecahedron purpose"},
            "1. Wikipedia: Roman dodecahedron\n2. Smithsonian",
        )
    )
    b.calls(
        (
            "fetch_page",
            {"url": "https://en.wikipedia.org/wiki/Roman_dodecahedron"},
            "Hollow bronze, 2nd-4th c.",
        )
    )
    b.calls(
        ("save_note", {"text": "Bronze, 4-11 cm, 2nd-4th century, north-west empire."}, "saved"),
        ("web_search", {"query": "dodecahedron knitting theory"}, "1. Knitting glove fingers (video)"),
    )
    b.reply("Theories include knitting, surveying and ritual use.", "Which one has the best evidence?")
    b.calls(("web_search", {"query": "dodecahedron surveying rangefinder"}, "1. Rangefinder claim, untested"))
    b.calls(("fetch_page", {"url": "https://www.smithsonianmag.com/dodecahedron"}, "No text mentions them."))
    b.calls(("save_note", {"text": "No contemporary text; purpose unknown."}, "saved"))
    b.reply("None is proven; the ritual view fits find sites.", "Look for the Tongeren find, please.")
    b.calls(("web_search", {"query": "Tongeren dodecahedron 2023"}, "1. Gallo-Roman Museum, Tongeren"))
    b.calls(
        ("fetch_page", {"url": "https://www.galloromeinsmuseum.be"}, "A dodecahedron found in 1939."),
        ("save_note", {"text": "Tongeren piece: in situ, 4th c."}, "saved"),
    )
    b.calls(("web_search", {"query": "dodecahedron calendar seasons"}, "1. Calendar theory (sowing dates)"))
    b.calls(("save_note", {"text": "Calendar idea: sowing date gauge."}, "saved"))
    b.calls(("fetch_page", {"url": "https://example.org/calendar"}, "Angles match the sun in May, they say."))
    b.reply("A calendar role is possible, but unproven.", "Summarize every theory with one source each.")
    b.calls(("web_search", {"query": "dodecahedron candle holder wax"}, "1. Wax traces on one piece"))
    b.calls(
        ("save_note", {"text": "Candle holder: wax found inside one."}, "saved"),
        ("web_search", {"query": "dodecahedron gaming die"}, "1. Dice theory (weak)"),
    )
    b.reply("Six theories: knitting, survey, ritual, calendar, candle, dice.", "Good. Add the dates.")
    b.calls(("fetch_page", {"url": "https://en.wikipedia.org/wiki/Roman_dodecahedron#Dating"}, "2nd-4th c."))
    b.calls(("save_note", {"text": "Dated 2nd-4th century AD."}, "saved"))
    b.calls(("web_search", {"query": "dodecahedron count found"}, "About 130 known."))
    b.reply("About 130 are known, all 2nd-4th century.", "Now finish the report.")
    b.calls(
        ("save_note", {"text": "About 130 known."}, "saved"),
        ("save_note", {"text": "Report drafted."}, "saved"),
    )
    return Run("research agent", RESEARCH_TOOLS, b.messages)  # fmt: skip


def runs() -> Iterator[Run]:
    yield coding_run()
    yield research_run()
