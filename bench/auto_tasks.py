"""The agent tasks of bench/auto_calls.py: requests with tools and tool_choice "auto", each with what a
good reply does (call these tools, or answer without a call). Written for this bench, in the shape agent
frameworks send: a system prompt, tools, a user turn, sometimes earlier turns and tool results."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    parameters = {"type": "object", "properties": properties, "required": required}
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


TEXT = {"type": "string"}
TOOLS = {
    tool["function"]["name"]: tool
    for tool in (
        _tool(
            "get_weather",
            "Current weather for a city.",
            {"city": TEXT, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            ["city"],
        ),
        _tool("get_time", "Local time in a city.", {"city": TEXT}, ["city"]),
        _tool(
            "web_search",
            "Search the web and return the top results.",
            {"query": TEXT, "limit": {"type": "integer", "minimum": 1, "maximum": 10}},
            ["query"],
        ),
        _tool(
            "send_email",
            "Send an email.",
            {"to": TEXT, "subject": TEXT, "body": TEXT},
            ["to", "subject", "body"],
        ),
        _tool("read_file", "Read a text file and return its content.", {"path": TEXT}, ["path"]),
        _tool("write_file", "Write text to a file.", {"path": TEXT, "content": TEXT}, ["path", "content"]),
        _tool("calculator", "Evaluate an arithmetic expression.", {"expression": TEXT}, ["expression"]),
        _tool(
            "convert_currency",
            "Convert an amount of money between currencies (ISO codes).",
            {"amount": {"type": "number"}, "source": TEXT, "target": TEXT},
            ["amount", "source", "target"],
        ),
        _tool(
            "create_event",
            "Put an event in the calendar.",
            {
                "title": TEXT,
                "date": {"type": "string", "description": "YYYY-MM-DD"},
                "attendees": {"type": "array", "items": TEXT},
            },
            ["title", "date", "attendees"],
        ),
    )
}
SYSTEM = "You are a helpful assistant. Use a tool when it helps; otherwise answer directly."


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # one_tool | several | no_tool | parallel | after_result | multi_turn
    messages: list[dict[str, Any]]
    tools: tuple[str, ...]
    expected: tuple[str, ...] = ()  # the calls a good reply makes (names, with repeats); () = no call
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_call(self) -> bool:
        return bool(self.expected)

    def tool_specs(self) -> list[dict[str, Any]]:
        return [TOOLS[name] for name in self.tools]


ALL = tuple(TOOLS)


def _ask(text: str, *history: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "system", "content": SYSTEM}, *history, {"role": "user", "content": text}]


def _called(call_id: str, name: str, arguments: dict[str, Any], result: str) -> list[dict[str, Any]]:
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
    return [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call_id, "content": result},
    ]


def _after(question: str, name: str, arguments: dict[str, Any], result: str) -> list[dict[str, Any]]:
    return [*_ask(question), *_called("call_1", name, arguments, result)]


def tasks() -> list[Task]:
    one = [
        ("one_weather", "What is the weather in Paris right now?", "get_weather"),
        ("one_calc", "What is 1234 * 5678?", "calculator"),
        ("one_read", "Show me what is in notes.txt.", "read_file"),
        ("one_search", "Find recent news about the James Webb telescope.", "web_search"),
        ("one_currency", "How much is 250 US dollars in euros?", "convert_currency"),
        (
            "one_event",
            "Schedule 'Budget review' on 2026-12-15 with alice@example.com and bob@example.com.",
            "create_event",
        ),
    ]
    several = [
        ("pick_time", "What time is it in Tokyo?", "get_time"),
        ("pick_email", "Email bob@example.com that the quarterly report is ready.", "send_email"),
        ("pick_write", "Save the text 'hello world' to greeting.txt.", "write_file"),
        ("pick_weather", "Is it raining in London today?", "get_weather"),
        ("pick_calc", "Compute 17.5 percent of 2480.", "calculator"),
        ("pick_search", "Search the web for the population of Iceland.", "web_search"),
        ("pick_read", "Read config.yaml and tell me which port it sets.", "read_file"),
        ("pick_currency", "Convert 100 GBP to JPY.", "convert_currency"),
    ]
    none = [
        ("none_greeting", "Hi! How are you today?"),
        ("none_capital", "What is the capital of France?"),
        ("none_translate", "Translate 'good morning' into Spanish."),
        ("none_haiku", "Write a haiku about autumn."),
        ("none_thanks", "Thanks, that is all I needed."),
        ("none_explain", "Explain in one sentence what a Python list is."),
    ]
    parallel = [
        ("par_weather", "What is the weather in Paris and in Rome?", ("get_weather", "get_weather")),
        ("par_time", "What time is it in Tokyo and in New York?", ("get_time", "get_time")),
        ("par_mixed", "Give me the weather and the local time in Berlin.", ("get_weather", "get_time")),
        ("par_read", "Read a.txt and b.txt.", ("read_file", "read_file")),
    ]
    results = [
        (
            "res_weather",
            "What is the weather in Paris?",
            "get_weather",
            {"city": "Paris"},
            '{"temp_c": 18, "sky": "sunny"}',
        ),
        ("res_calc", "What is 1234 * 5678?", "calculator", {"expression": "1234 * 5678"}, "7006652"),
        (
            "res_read",
            "What is in notes.txt?",
            "read_file",
            {"path": "notes.txt"},
            "Buy milk. Call Anna at 5.",
        ),
        (
            "res_search",
            "Who designed the Eiffel Tower?",
            "web_search",
            {"query": "Eiffel Tower designer"},
            "Top result: the tower was designed by the engineering firm of Gustave Eiffel.",
        ),
    ]
    weather_done = [
        *_called("call_1", "get_weather", {"city": "Paris"}, '{"temp_c": 18}'),
        {"role": "assistant", "content": "It is 18 degrees in Paris."},
    ]
    multi = [
        (
            "multi_weather",
            "And in Madrid?",
            [{"role": "user", "content": "What is the weather in Paris?"}, *weather_done],
            "get_weather",
        ),
        (
            "multi_email",
            "Now email that summary to carol@example.com.",
            [
                {"role": "user", "content": "Summarize: the launch moved to May."},
                {"role": "assistant", "content": "Summary: the launch is now planned for May."},
            ],
            "send_email",
        ),
        (
            "multi_write",
            "Now write a one-line summary of it to summary.txt.",
            [
                {"role": "user", "content": "Read report.txt."},
                *_called("call_1", "read_file", {"path": "report.txt"}, "Sales grew 12 percent in Q3."),
                {"role": "assistant", "content": "The report says sales grew 12 percent in Q3."},
            ],
            "write_file",
        ),
        (
            "multi_switch",
            "What is the weather in Oslo?",
            [
                {"role": "user", "content": "What is 2 + 2?"},
                *_called("call_1", "calculator", {"expression": "2 + 2"}, "4"),
                {"role": "assistant", "content": "2 + 2 = 4."},
            ],
            "get_weather",
        ),
    ]
    return [
        *(Task(n, "one_tool", _ask(q), (t,), (t,)) for n, q, t in one),
        *(Task(n, "several", _ask(q), ALL, (t,)) for n, q, t in several),
        *(Task(n, "no_tool", _ask(q), ALL) for n, q in none),
        *(Task(n, "parallel", _ask(q), ALL, e) for n, q, e in parallel),
        *(Task(n, "after_result", _after(q, t, a, r), ALL) for n, q, t, a, r in results),
        *(
            Task(
                n,
                "multi_turn",
                [{"role": "system", "content": SYSTEM}, *h, {"role": "user", "content": q}],
                ALL,
                (t,),
            )
            for n, q, h, t in multi
        ),
    ]
