"""What tool instructions cost, in tokens per tool, and whether a compact form keeps forced calls valid.

Renderings of the same tools, tokenized by a real llama-server (SmolLM2's tokenizer):
  - json (before):    the adapter's tool instructions up to 2026-12-01 (one JSON line per tool);
  - signatures (now): `tools.tool_instructions`, one TypeScript-like line per tool with its and its
                      arguments' descriptions (litellm_llamafile/tool_signatures.py);
  - bare signatures:  the same without descriptions (the floor of the compact form);
  - native:           the model family's own rendering: `tools` sent natively to llama-server --jinja
                      under an official llama.cpp template (Qwen2.5, Hermes 3, Llama 3.1, functionary
                      v3.2), rendered by POST /apply-template and tokenized by POST /tokenize.
Cost per tool = (tokens of the block with the tools - tokens of the block with no tools) / number of
tools, so the fixed header and footer are not counted per tool.

Then forced-call validity on SmolLM2 (the cases of bench/constrained_calls.py plus agent-shaped cases
with twenty long commands), each instruction form with the adapter's constraint and without it. Which
tool the model picked under "required" is reported too (for cases that have an expected tool).

    .venv/bin/python bench/tool_instructions.py [--n 40] [--templates DIR] [--json F] [--skip-native]

Tokens per tool measured 2026-12-01/02 (token counts do not depend on machine load), SmolLM2 tokenizer:

    rendering                      agent (20 long)   small (4)   benchmark sets (9)
    json (before)                       146.3          48.0           66.0
    signatures (now, the default)        95.0          13.8           21.9
    bare signatures                      43.3           9.0           16.2
    native Qwen2.5                      163.8          84.5           88.3
    native Hermes 3                     207.1          72.2          101.7
    native Llama 3.1                    199.2         100.8          119.4
    native functionary v3.2 (TS)        109.5          25.0           36.3

Forced-call validity, `--n 16 --skip-native`, 2026-12-02 (2-core VM, quiet):

    template  form               constrained  unconstrained  expected tool  prompt tok
    chatml    json (before)           100.0%           0.0%            2/8      1795.2
    chatml    signatures (now)        100.0%           0.0%            0/8      1241.8
    chatml    bare signatures         100.0%           0.0%            2/8       720.2
    mistral   json (before)           100.0%           0.0%            0/8      1791.2
    mistral   signatures (now)        100.0%           0.0%            0/8      1237.8
    mistral   bare signatures         100.0%           0.0%            1/8       716.2

"expected tool" (which of twenty commands was picked) is at chance level for SmolLM2-135M in every form.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from constrained_calls import TOOL_SETS, schema_valid  # noqa: E402

from litellm_llamafile.core.settings import TemplateName  # noqa: E402
from litellm_llamafile.flows.request import RequestProfile, build_chat_request  # noqa: E402
from litellm_llamafile.harness.embedded_server import EmbeddedServer  # noqa: E402
from litellm_llamafile.prompt.conversation import Conversation  # noqa: E402
from litellm_llamafile.prompt.signatures import SIGNATURE_HEADER, signature_line  # noqa: E402
from litellm_llamafile.prompt.tools import INSTRUCTION_FOOTER, function_spec, tool_instructions  # noqa: E402
from litellm_llamafile.reply.parsing import parse_tool_calls  # noqa: E402
from tests.support.agent_requests import AGENT_COMMANDS, AGENT_SYSTEM, SMALL_TOOLS  # noqa: E402

# -- the renderings compared ---------------------------------------------------------------------

JSON_HEADER = "You can call these tools. Each line is one tool as JSON (name, description, parameters):"


def json_instructions(tools: Sequence[Mapping[str, Any]]) -> str:
    """The adapter's tool instructions up to 2026-12-01: one JSON line per tool, its schema verbatim
    (kept here as the baseline the signatures are measured against)."""
    lines = [JSON_HEADER]
    for tool in tools:
        spec = function_spec(tool)
        entry: dict[str, Any] = {"name": spec.get("name", "")}
        if spec.get("description"):
            entry["description"] = spec["description"]
        entry["parameters"] = spec.get("parameters") or {"type": "object", "properties": {}}
        lines.append(json.dumps(entry, ensure_ascii=False, sort_keys=True))
    lines.append(INSTRUCTION_FOOTER)
    return "\n".join(lines)


def bare_signatures(tools: Sequence[Mapping[str, Any]]) -> str:
    """Signatures without any description: the floor of the compact form."""
    lines = [
        signature_line(
            {"name": function_spec(t).get("name"), "parameters": function_spec(t).get("parameters")}
        )
        for t in tools
    ]
    return "\n".join([SIGNATURE_HEADER, *lines, INSTRUCTION_FOOTER])


FORMS = {
    "json (before)": json_instructions,
    "signatures (now)": tool_instructions,
    "bare signatures": bare_signatures,
}

# -- token costs ----------------------------------------------------------------------------------


def tokens_of(api_base: str, text: str) -> int:
    answer = httpx.post(
        f"{api_base}/tokenize",
        json={"content": text, "add_special": False, "parse_special": True},
        timeout=60,
    ).json()
    return len(answer["tokens"])


def per_tool(api_base: str, render: Any, tools: Sequence[Mapping[str, Any]]) -> float:
    return (tokens_of(api_base, render(tools)) - tokens_of(api_base, render([]))) / len(tools)


def native_per_tool(api_base: str, tools: Sequence[Mapping[str, Any]]) -> float:
    """Tokens per tool in the server's own template rendering of `tools` (apply-template with and
    without tools, same messages)."""
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]

    def rendered(with_tools: Sequence[Mapping[str, Any]]) -> int:
        body: dict[str, Any] = {"messages": messages}
        if with_tools:
            body["tools"] = list(with_tools)
        prompt = httpx.post(f"{api_base}/apply-template", json=body, timeout=60).json()["prompt"]
        return tokens_of(api_base, prompt)

    return (rendered(tools) - rendered([])) / len(tools)


TOOL_GROUPS = {
    "agent (20 long)": AGENT_COMMANDS,
    "small (4)": SMALL_TOOLS,
    "benchmark sets (9)": [t for tools, _ in TOOL_SETS for t in tools],
}
NATIVE_TEMPLATES = [
    "Qwen-Qwen2.5-7B-Instruct.jinja",
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
    "meta-llama-Llama-3.1-8B-Instruct.jinja",
    "meetkai-functionary-medium-v3.2.jinja",
]


def token_table(api_base: str) -> dict[str, dict[str, float]]:
    return {
        group: {form: round(per_tool(api_base, render, tools), 1) for form, render in FORMS.items()}
        for group, tools in TOOL_GROUPS.items()
    }


def native_table(templates_dir: Path) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in NATIVE_TEMPLATES:
        path = templates_dir / name
        if not path.exists():
            continue
        with EmbeddedServer(extra_args=["--chat-template-file", str(path)], slots=1) as server:
            out[name.removesuffix(".jinja")] = {
                group: round(native_per_tool(server.base_url, tools), 1)
                for group, tools in TOOL_GROUPS.items()
            }
    return out


# -- forced-call validity ----------------------------------------------------------------------------

AGENT_CASES: list[tuple[str, str]] = [
    ("Search the web for Roman dodecahedron finds in Britain.", "web_search"),
    ("Save the text 'twelve faces' into notes/dodeca.txt.", "write_file"),
    ("Read the file report.md.", "read_file"),
    ("Remember that most dodecahedra were found in Gaul.", "remember"),
    ("Add a high-priority task: compare museum collections.", "add_task"),
    ("Run Python code that prints 12*5.", "execute_python_code"),
    ("We are done: the report is in report.md. End the task.", "finish"),
    ("Translate 'twelve faces' into Latin.", "translate_text"),
]


def cases(n: int) -> list[tuple[list[dict[str, Any]], str, Any, str | None, str | None]]:
    """(tools, prompt, tool_choice, system, expected tool): half from the constrained-call benchmark's
    sets (alternately required / named), half agent-shaped (required, twenty commands)."""
    out: list[tuple[list[dict[str, Any]], str, Any, str | None, str | None]] = []
    for index in range(n):
        if index % 2 == 0:
            tools, prompts = TOOL_SETS[(index // 2) % len(TOOL_SETS)]
            prompt = prompts[(index // (2 * len(TOOL_SETS))) % len(prompts)]
            name = tools[0]["function"]["name"]
            choice: Any = "required" if index % 4 == 0 else {"type": "function", "function": {"name": name}}
            out.append((tools, prompt, choice, None, None))
        else:
            prompt, expected = AGENT_CASES[(index // 2) % len(AGENT_CASES)]
            out.append((AGENT_COMMANDS, prompt, "required", AGENT_SYSTEM, expected))
    return out


def request_body(
    form: str,
    tools: list[dict[str, Any]],
    prompt: str,
    choice: Any,
    system: str | None,
    template: str,
    seed: int,
) -> dict[str, Any]:
    """The adapter's own request body, with its tool instructions swapped for `form`'s."""
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    params = {"tools": tools, "tool_choice": choice, "max_tokens": 300, "temperature": 0.7, "seed": seed}
    strategy = TemplateName.MISTRAL if template == "mistral" else TemplateName.CHATML
    body = build_chat_request(
        "smollm2", Conversation.of(messages), params, RequestProfile(strategy=strategy)
    ).payload
    current, replacement = tool_instructions(tools), FORMS[form](tools)
    for message in body["messages"]:
        if isinstance(message.get("content"), str) and current in message["content"]:
            message["content"] = message["content"].replace(current, replacement)
            break
    else:
        raise RuntimeError("tool instructions not found in the request body")
    return body


def validity(api_base: str, template: str, n: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for form in FORMS:
        counts = {"constrained": 0, "unconstrained": 0, "expected_tool": 0, "expected_cases": 0}
        prompt_tokens = 0
        started = time.perf_counter()
        for index, (tools, prompt, choice, system, expected) in enumerate(cases(n)):
            body = request_body(form, tools, prompt, choice, system, template, index)
            for constrained in (True, False):
                sent = dict(body)
                if not constrained:
                    sent.pop("response_format", None)
                    sent.pop("grammar", None)
                data = httpx.post(f"{api_base}/v1/chat/completions", json=sent, timeout=600).json()
                choice_data = data["choices"][0]
                text = choice_data["message"].get("content") or ""
                reply = parse_tool_calls(text, tools, truncated=choice_data["finish_reason"] == "length")
                calls = [(c.name, c.arguments) for c in reply.tool_calls]
                ok = schema_valid(calls, tools, choice)
                counts["constrained" if constrained else "unconstrained"] += ok
                if constrained:
                    prompt_tokens += data["usage"]["prompt_tokens"]
                    if expected is not None:
                        counts["expected_cases"] += 1
                        counts["expected_tool"] += bool(calls) and calls[0][0] == expected
        results[form] = {
            "valid_constrained_pct": round(100 * counts["constrained"] / n, 1),
            "valid_unconstrained_pct": round(100 * counts["unconstrained"] / n, 1),
            "expected_tool": f"{counts['expected_tool']}/{counts['expected_cases']}",
            "mean_prompt_tokens": round(prompt_tokens / n, 1),
            "seconds": round(time.perf_counter() - started, 1),
        }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--templates", type=Path, default=None, help="llama.cpp's models/templates folder")
    parser.add_argument("--skip-native", action="store_true")
    parser.add_argument("--skip-validity", action="store_true", help="token costs only")
    parser.add_argument("--template", choices=["chatml", "mistral", "both"], default="both")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d")}
    with EmbeddedServer(slots=1) as server:
        report["tokens_per_tool"] = token_table(server.base_url)
    if not args.skip_native and args.templates:
        report["native_tokens_per_tool"] = native_table(args.templates)
    report["validity"] = {}
    for template in ["chatml", "mistral"] if args.template == "both" else [args.template]:
        if args.skip_validity:
            break
        with EmbeddedServer(template=template, slots=1) as server:
            report["validity"][template] = validity(server.base_url, template, args.n)

    groups = list(TOOL_GROUPS)
    print("tokens per tool (SmolLM2 tokenizer)")
    print(f"{'rendering':<44}" + "".join(f"{g:>20}" for g in groups))
    for form, row in ((f, {g: report["tokens_per_tool"][g][f] for g in groups}) for f in FORMS):
        print(f"{'adapter ' + form:<44}" + "".join(f"{row[g]:>20}" for g in groups))
    for name, row in report.get("native_tokens_per_tool", {}).items():
        print(f"{'native ' + name:<44}" + "".join(f"{row[g]:>20}" for g in groups))
    print(f"\nforced-call validity, N={args.n} per form and template")
    columns = ("constrained", 12), ("unconstrained", 15), ("expected tool", 15), ("prompt tok", 12)
    print(f"{'template':<10}{'form':<18}" + "".join(f"{name:>{width}}" for name, width in columns))
    for template, forms in report["validity"].items():
        for form, r in forms.items():
            print(
                f"{template:<10}{form:<18}{r['valid_constrained_pct']:>11}%{r['valid_unconstrained_pct']:>14}%"
                f"{r['expected_tool']:>15}{r['mean_prompt_tokens']:>12}"
            )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
