"""The main job's story (`litellm-llamafile demo`): how a turn is judged and summed up. The run itself is
the main job on real servers (README's first command); these are the judgements it prints."""

from __future__ import annotations

from litellm_llamafile.cli.demo import Story, Turn, adapter_headers, check_call, summary_row, turn_lines


def test_a_call_is_valid_only_for_an_offered_tool_with_arguments_its_schema_accepts() -> None:
    assert check_call("read_notes", '{"topic": "purpose"}') is None
    assert check_call("read_notes", '{"topic": "weather"}') is not None  # not in the enum
    assert check_call("write_file", '{"filename": "a.txt"}') == "'text' is a required property"
    assert check_call("search", "{}") == "'search' is not an offered tool"
    assert check_call("finish", "{not json") is not None


def test_the_adapters_report_is_read_from_the_proxys_headers_whatever_prefix_litellm_adds() -> None:
    headers = {
        "x-llamafile-roles": "chatml (...)",
        "llm_provider-x-llamafile-tools": "3 tools",
        "x-other": "1",
    }
    assert adapter_headers(headers) == {"roles": "chatml (...)", "tools": "3 tools"}


def test_the_summary_counts_valid_calls_exact_counts_and_the_cache_from_turn_2() -> None:
    story = Story("mistral", "adapter", answer="Twelve faces.")
    story.turns = [
        Turn(1, counted=340, used=340, cached=0, call='read_notes({"topic": "purpose"})'),
        Turn(2, counted=420, used=420, cached=400, call='finish({"answer": "x"})'),
    ]
    assert summary_row(story) == ["mistral", "adapter", "2/2", "2/2", "2/2", "95%", "finish"]
    builtin = Story("mistral", "built-in")
    builtin.turns = [
        Turn(1, counted=120, used=210, content="Roman dodecahedrons are"),
        Turn(
            2,
            error="litellm.completion returned None; the server had answered HTTP 400: ...",
            short_error="HTTP 400",
        ),
    ]
    row = summary_row(builtin)
    assert row[2:5] == ["1/2", "0/2", "0/2"] and row[6] == "turn 2: HTTP 400"


def test_later_turns_repeat_only_what_changed() -> None:
    first = Turn(
        1, report={"roles": "mistral (folded): 2 messages -> 1 turns", "tools": "3", "constraint": "a"}
    )
    second = Turn(
        2, report={"roles": "mistral (folded): 4 messages -> 3 turns", "tools": "3", "constraint": "b"}
    )
    lines = "\n".join(turn_lines(second, "said", first))
    assert "roles      as before: 4 messages -> 3 turns" in lines
    assert "tools" not in lines and "constraint b" in lines


def test_a_turn_says_when_the_count_was_off_and_what_came_back_instead_of_a_call() -> None:
    turn = Turn(1, counted=120, used=210, content="Roman dodecahedrons are", seconds=1.0)
    lines = "\n".join(turn_lines(turn, "litellm.token_counter said"))
    assert "no call; the reply was text: 'Roman dodecahedrons are'" in lines
    assert "litellm.token_counter said 120 before, the server used 210 (off by -90)" in lines
