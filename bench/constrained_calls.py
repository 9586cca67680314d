"""Forced tool calls with and without constrained sampling, against a real SmolLM2 server.

For N varied prompts (several tool sets: strings, integers, numbers, enums, booleans, nested objects,
arrays), each forced with tool_choice="required" or a named function, it counts the replies that parse
into schema-valid tool calls:
  - with constraints: through the adapter (litellm.completion), which constrains sampling to the
    allowed calls' JSON schema;
  - without: the very same request body minus the constraint, sent to the same server, parsed by the
    same parser (what the model writes when only asked).

    .venv/bin/python bench/constrained_calls.py [--n 60] [--api-base URL] [--template chatml] [--json F]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx
import jsonschema
import litellm

import litellm_llamafile
from litellm_llamafile.core.settings import TemplateName
from litellm_llamafile.flows.request import RequestProfile, build_chat_request
from litellm_llamafile.harness.embedded_server import EmbeddedServer
from litellm_llamafile.prompt.conversation import Conversation
from litellm_llamafile.reply.parsing import parse_tool_calls


def tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": required}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": schema}}


TOOL_SETS: list[tuple[list[dict[str, Any]], list[str]]] = [
    (
        [
            tool("web_search", "Search the web.", {"query": {"type": "string"}}, ["query"]),
            tool("finish", "Give the final answer.", {"answer": {"type": "string"}}, ["answer"]),
        ],
        [
            "Tell me about Roman dodecahedrons",
            "Who built Hadrian's Wall?",
            "What is the capital of Gaul?",
            "Find recent news about bronze age finds",
            "Summarize what you know about Roman glass",
        ],
    ),
    (
        [
            tool(
                "get_weather",
                "Weather for a city.",
                {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    "days": {"type": "integer", "minimum": 1, "maximum": 7},
                },
                ["city", "unit"],
            )
        ],
        [
            "Weather in Rome for 3 days in celsius",
            "Is it cold in Oslo?",
            "Forecast for Lyon in fahrenheit",
            "Will it rain in Trier this week?",
            "Temperature in Cologne tomorrow",
        ],
    ),
    (
        [
            tool(
                "create_event",
                "Create a calendar event.",
                {
                    "title": {"type": "string"},
                    "start": {
                        "type": "object",
                        "properties": {"date": {"type": "string"}, "hour": {"type": "integer"}},
                        "required": ["date", "hour"],
                    },
                    "attendees": {"type": "array", "items": {"type": "string"}},
                    "private": {"type": "boolean"},
                },
                ["title", "start"],
            )
        ],
        [
            "Book a museum visit on 2026-12-03 at 10 with Ana and Ben",
            "Schedule a dig meeting Friday at 9",
            "Create a private event: dentist on 2026-12-01 at 15",
            "Plan a lecture about coins next Monday at 14",
            "Add lunch with Marcus tomorrow at noon",
        ],
    ),
    (
        [
            tool(
                "convert",
                "Convert an amount between currencies.",
                {
                    "amount": {"type": "number"},
                    "from": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
                    "to": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
                },
                ["amount", "from", "to"],
            ),
            tool("lookup_rate", "Look up an exchange rate.", {"pair": {"type": "string"}}, ["pair"]),
        ],
        [
            "Convert 12.5 EUR to USD",
            "How many pounds is 100 dollars?",
            "What's the EUR/GBP rate?",
            "Change 3 GBP into EUR",
            "Convert 2000 USD to euros",
        ],
    ),
    (
        [
            tool(
                "write_file",
                "Write a file.",
                {"filename": {"type": "string"}, "text": {"type": "string"}},
                ["filename", "text"],
            ),
            tool("read_file", "Read a file.", {"filename": {"type": "string"}}, ["filename"]),
            tool("list_files", "List files.", {"folder": {"type": "string"}}, []),
        ],
        [
            "Save a note saying the dodecahedron has 12 faces",
            "Show me notes.txt",
            "What files are in /data?",
            "Write a haiku about Rome to poem.txt",
            "Open the file report.md",
        ],
    ),
]


def cases(n: int) -> list[tuple[list[dict[str, Any]], str, Any]]:
    """n (tools, prompt, tool_choice) triples cycling through tool sets, prompts and choice forms."""
    out = []
    for (tools, prompts), round_ in zip(itertools.cycle(TOOL_SETS), range(n), strict=False):
        prompt = prompts[(round_ // len(TOOL_SETS)) % len(prompts)]
        names = [t["function"]["name"] for t in tools]
        choice: Any = "required" if round_ % 2 == 0 else {"type": "function", "function": {"name": names[0]}}
        out.append((tools, prompt, choice))
    return out


def schema_valid(tool_calls: list[tuple[str, str]], tools: list[dict[str, Any]], choice: Any) -> bool:
    by_name = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    if not tool_calls:
        return False
    for name, arguments in tool_calls:
        if name not in by_name or (isinstance(choice, dict) and name != choice["function"]["name"]):
            return False
        try:
            jsonschema.validate(json.loads(arguments), by_name[name])
        except (jsonschema.ValidationError, ValueError):
            return False
    return True


def run(api_base: str, template: str, n: int, max_tokens: int) -> dict[str, Any]:
    litellm_llamafile.register()
    strategy = TemplateName.MISTRAL if template == "mistral" else TemplateName.CHATML
    with_ok = without_ok = 0
    with_ms = without_ms = 0.0
    failures: list[dict[str, Any]] = []
    for index, (tools, prompt, choice) in enumerate(cases(n)):
        messages = [{"role": "user", "content": prompt}]
        params = {
            "tools": tools,
            "tool_choice": choice,
            "max_tokens": max_tokens,
            "temperature": 0.7,
            "seed": index,
        }
        started = time.perf_counter()
        response = litellm.completion(
            model="llamafile/smollm2", messages=messages, api_base=api_base, **params
        )
        with_ms += (time.perf_counter() - started) * 1000
        calls = [
            (c.function.name, c.function.arguments) for c in response.choices[0].message.tool_calls or []
        ]
        with_ok += schema_valid(calls, tools, choice)

        body = build_chat_request(
            "smollm2", Conversation.of(messages), params, RequestProfile(strategy=strategy)
        ).payload
        body.pop("response_format", None)  # the same request, sampling left free
        started = time.perf_counter()
        data = httpx.post(f"{api_base}/v1/chat/completions", json=body, timeout=300).json()
        without_ms += (time.perf_counter() - started) * 1000
        text = data["choices"][0]["message"]["content"] or ""
        reply = parse_tool_calls(text, tools, truncated=data["choices"][0]["finish_reason"] == "length")
        ok = schema_valid([(c.name, c.arguments) for c in reply.tool_calls], tools, choice)
        without_ok += ok
        if not ok and len(failures) < 5:
            failures.append({"prompt": prompt, "unconstrained_reply": text[:160]})
    return {
        "template": template,
        "n": n,
        "schema_valid_with_constraints_pct": round(100 * with_ok / n, 1),
        "schema_valid_without_constraints_pct": round(100 * without_ok / n, 1),
        "mean_ms_with": round(with_ms / n, 1),
        "mean_ms_without": round(without_ms / n, 1),
        "unconstrained_failure_examples": failures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--api-base", default=None, help="a running server; default: start one")
    parser.add_argument("--template", choices=["chatml", "mistral", "both"], default="both")
    parser.add_argument("--max-tokens", type=int, default=400)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = []
    for template in ["chatml", "mistral"] if args.template == "both" else [args.template]:
        if args.api_base:
            results.append(run(args.api_base, template, args.n, args.max_tokens))
            continue
        with EmbeddedServer(template=template) as server:
            results.append(run(server.base_url, template, args.n, args.max_tokens))
    print(f"{'template':<10}{'N':>5}{'valid with':>14}{'valid without':>16}{'ms with':>10}{'ms without':>12}")
    for r in results:
        print(
            f"{r['template']:<10}{r['n']:>5}{r['schema_valid_with_constraints_pct']:>13}%"
            f"{r['schema_valid_without_constraints_pct']:>15}%{r['mean_ms_with']:>10}{r['mean_ms_without']:>12}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["schema_valid_with_constraints_pct"] == 100.0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
