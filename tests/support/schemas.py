"""Tool parameter schemas as pydantic emits them ($ref/$defs, Optional, Literal, Enum, recursion, ...),
shared by the replay tests of the constraints and their live counterparts."""

from __future__ import annotations

import datetime
from enum import StrEnum
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field


class Unit(StrEnum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Location(BaseModel):
    city: str = Field(description="City name")
    country: str | None = None


class WeatherQuery(BaseModel):
    location: Location = Field(description="Where")
    unit: Unit = Unit.CELSIUS
    days: int = Field(ge=1, le=14)


class LineItem(BaseModel):
    sku: str = Field(max_length=12)
    quantity: int = Field(gt=0, le=1000)
    price: float = Field(ge=0, le=10000)


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: Location
    items: list[LineItem] = Field(min_length=1, max_length=3)
    priority: Literal["low", "normal", "high"]
    note: str | None = None
    gift: bool = False


class Node(BaseModel):
    name: str
    children: list[Node] = []


class Settings(BaseModel):
    limits: dict[str, int]
    pair: tuple[int, str]
    start: datetime.date
    labels: dict[str, Unit] = {}


MODELS: dict[str, type[BaseModel]] = {
    "get_weather": WeatherQuery,
    "place_order": Order,
    "make_tree": Node,
    "configure": Settings,
}


def tool_for(name: str, model: type[BaseModel]) -> dict[str, Any]:
    """An OpenAI tool whose parameters are the model's JSON schema, as openai-agents sends it."""
    return {
        "type": "function",
        "function": {"name": name, "description": name, "parameters": model.model_json_schema()},
    }


TOOLS = [tool_for(name, model) for name, model in MODELS.items()]


def valid_arguments(name: str, arguments: object) -> bool:
    """Whether `arguments` is valid for the tool, by the JSON schema and by pydantic itself.

    Validated as the decoded value: the grammar's base `char` rule (unchanged, it is in recorded
    requests) admits a lone \\uD800-\\uDFFF escape, which pydantic's JSON-text mode rejects."""
    model = MODELS[name]
    try:
        jsonschema.validate(arguments, model.model_json_schema())
        model.model_validate(arguments)
    except (jsonschema.ValidationError, ValueError):
        return False
    return True


class Reflection(BaseModel):
    """The JSON thought an agent in the thought mode writes before its call (`llamafile_thought_schema`)."""

    observation: str = Field(max_length=80)
    plan: list[str] = Field(min_length=1, max_length=3)
    next_step: str = Field(max_length=80)


class AgentThought(BaseModel):
    thoughts: Reflection


THOUGHT_SCHEMA = AgentThought.model_json_schema()  # with $defs/$ref, as pydantic writes it


def valid_thought(content: str | None) -> bool:
    """Whether a reply's content is exactly one JSON thought valid for THOUGHT_SCHEMA."""
    try:
        AgentThought.model_validate_json(content or "")
    except ValueError:
        return False
    return True


# -- schemas built to cost as much as possible (issue 24's reproductions) ------------------------------


def nested_optional(depth: int) -> dict[str, Any]:
    """Objects nested `depth` deep whose members are all optional (an exponential grammar, once)."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema, "b": {"type": "integer"}}}
    return schema


def nested_required(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


def type_lists(depth: int, repeat: int) -> dict[str, Any]:
    """`type` lists repeating one name `repeat` times at every level (each used to be walked again)."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": ["object"] * repeat, "properties": {"a": schema}}
    return schema


def cross_product(parts: int, options: int) -> dict[str, Any]:
    """allOf of `parts` anyOfs of `options` objects: options**parts alternatives once merged."""
    return {
        "allOf": [
            {
                "anyOf": [
                    {"type": "object", "properties": {f"p{i}_{j}": {"type": "integer"}}}
                    for j in range(options)
                ]
            }
            for i in range(parts)
        ]
    }


def reference_fan_out(refs: int, members: int) -> dict[str, Any]:
    """`refs` members that all reference one definition of `members` members."""
    definition = {"type": "object", "properties": {f"f{i}": {"type": "string"} for i in range(members)}}
    return {
        "type": "object",
        "$defs": {"D": definition},
        "properties": {f"r{i}": {"$ref": "#/$defs/D"} for i in range(refs)},
    }
