"""Requests the tests share: tools, prompts, sampling settings."""

from __future__ import annotations

from typing import Any

SEARCH = {
    "type": "function",
    "function": {
        "name": "web_search",
        "description": "Search the web and return the top results.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "What to search for"}},
            "required": ["query"],
        },
    },
}
FINISH = {
    "type": "function",
    "function": {
        "name": "finish",
        "description": "End the task with a final answer.",
        "parameters": {
            "type": "object",
            "properties": {"answer": {"type": "string"}},
            "required": ["answer"],
        },
    },
}
# One small tool the template-family and reasoning tests offer under every corpus template.
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
SYSTEM = "You are a careful research assistant. Answer in one short paragraph."
TASK = "Tell me about Roman dodecahedrons"
GREEDY: dict[str, Any] = {"temperature": 0, "seed": 7}

# A 1x1 PNG as a data: URL, for image parts (no network needed to read it).
PIXEL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)
