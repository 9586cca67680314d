"""What LiteLLM says about a llamafile/ model once register() has run, before any call: frameworks such as
CrewAI and DSPy ask `supports_function_calling` first and send no tools when it is False. Also the $0
price (LiteLLM's failing cost lookup costs a quarter of a call) and the context window the server reports.
Replay tier: no server, no HTTP."""

from __future__ import annotations

import uuid

import litellm
import litellm.utils
import pytest

import litellm_llamafile
from litellm_llamafile.integration import model_info

CAPABILITY_CHECKS = ("supports_function_calling", "supports_tool_choice", "supports_response_schema")


def fresh_model() -> str:
    """A llamafile/ name no call and no test has used: nothing registered for it."""
    return f"llamafile/never-called-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("check", CAPABILITY_CHECKS)
def test_capabilities_are_true_for_any_llamafile_model_before_any_call(check: str) -> None:
    model = fresh_model()
    assert model_info.model_key(model) not in litellm.model_cost
    assert getattr(litellm.utils, check)(model=model) is True
    if hasattr(litellm, check):  # the spelling frameworks use
        assert getattr(litellm, check)(model=model) is True
    assert getattr(litellm.utils, check)(
        model=model.removeprefix("llamafile/"), custom_llm_provider="llamafile"
    )


@pytest.mark.parametrize("check", CAPABILITY_CHECKS)
def test_without_the_adapter_litellm_says_what_it_said_before(check: str) -> None:
    model = fresh_model()
    litellm_llamafile.unregister()
    try:
        assert getattr(litellm.utils, check)(model=model) is False
    finally:
        litellm_llamafile.register()


def test_model_info_of_any_llamafile_model_is_free_and_names_the_capabilities() -> None:
    model = fresh_model()
    info = litellm.get_model_info(model)
    assert info["key"] == model
    assert (info["input_cost_per_token"], info["output_cost_per_token"]) == (0.0, 0.0)
    assert info["litellm_provider"] == "llamafile" and info["mode"] == "chat"
    assert all(info.get(check) is True for check in CAPABILITY_CHECKS)
    assert info["max_input_tokens"] is None  # unknown until the server says


def test_a_call_to_any_llamafile_model_costs_nothing_before_it_was_ever_registered() -> None:
    model = fresh_model()
    response = litellm.ModelResponse(
        model=model, usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    )
    assert litellm.completion_cost(completion_response=response, model=model) == 0.0


def test_a_remembered_model_is_free_and_knows_its_context_window() -> None:
    model = fresh_model()
    model_info.remember_model(model, context_window=4096)
    info = litellm.get_model_info(model)
    assert (info["max_input_tokens"], info["max_tokens"]) == (4096, 4096)
    assert (info["input_cost_per_token"], info["output_cost_per_token"]) == (0.0, 0.0)
    assert litellm.utils.supports_function_calling(model=model)
    response = litellm.ModelResponse(
        model=model, usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    )
    assert litellm.completion_cost(completion_response=response, model=model) == 0.0


def test_remembering_again_changes_nothing_and_keeps_the_window() -> None:
    model = fresh_model()
    model_info.remember_model(
        model.removeprefix("llamafile/"), context_window=8192
    )  # bare name, as handlers see it
    entry = litellm.model_cost[model]
    model_info.remember_model(model)  # the per-call form, without a window
    model_info.remember_model(model, context_window=8192)
    assert litellm.model_cost[model] is entry  # not re-registered: a dict lookup per call
    model_info.remember_model(model, context_window=16384)  # the server was restarted with a larger window
    assert litellm.get_model_info(model)["max_input_tokens"] == 16384
