"""The compact tool listing: every tool, argument, type and description survives the shortening."""

from __future__ import annotations

from litellm_llamafile.prompt.signatures import (
    SIGNATURE_HEADER,
    signature_instructions,
    signature_line,
    type_text,
)

WEATHER = {
    "name": "get_weather",
    "description": "Current weather\n  for a place.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name, e.g. Rome"},
            "unit": {"type": "string", "enum": ["c", "f"]},
            "days": {"type": "integer"},
        },
        "required": ["city"],
    },
}


def test_a_signature_marks_optional_arguments_and_keeps_every_description() -> None:
    assert signature_line(WEATHER) == (
        'get_weather(city: string, unit?: "c"|"f", days?: integer)'
        " // Current weather for a place. city: City name, e.g. Rome"
    )


def test_a_tool_with_no_parameters_or_description_is_a_bare_call() -> None:
    assert signature_line({"name": "finish"}) == "finish()"


def test_refs_are_resolved_through_defs_as_pydantic_writes_them() -> None:
    parameters = {
        "$defs": {
            "Place": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"]}
        },
        "type": "object",
        "properties": {
            "place": {"$ref": "#/$defs/Place"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["place"],
    }
    assert (
        signature_line({"name": "pin", "parameters": parameters})
        == "pin(place: {lat: number}, tags?: string[])"
    )


def test_unions_nullables_and_constants_read_as_typescript() -> None:
    assert type_text({"anyOf": [{"type": "string"}, {"type": "null"}]}) == "string | null"
    assert type_text({"type": ["integer", "null"]}) == "integer | null"
    assert type_text({"const": "go"}) == '"go"'
    assert type_text({"type": "array", "items": {"enum": [1, 2]}}) == "(1|2)[]"


def test_a_self_referencing_schema_ends_in_object_instead_of_recursing() -> None:
    node = {
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
        "$ref": "#/$defs/Node",
    }
    assert type_text(node) == "{next?: {next?: object}}"


def test_the_block_lists_each_tool_once_between_header_and_footer() -> None:
    block = signature_instructions([WEATHER, {"name": "finish"}], footer="Answer with JSON.")
    lines = block.split("\n")
    assert lines[0] == SIGNATURE_HEADER and lines[-1] == "Answer with JSON."
    assert [line.split("(")[0] for line in lines[1:-1]] == ["get_weather", "finish"]
