"""The proxy config generator: its output is read back with yaml.safe_load and checked as LiteLLM reads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from litellm_llamafile.cli.proxy_config import Deployment, RedisSettings, main, render_config

ROOT = Path(__file__).resolve().parent.parent
SMART = "http://127.0.0.1:8080"
FAST = "http://127.0.0.1:8081"
FAST_2 = "http://127.0.0.1:8082"


def load(text: str) -> dict[str, Any]:
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def by_name(config: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [entry["litellm_params"] for entry in config["model_list"] if entry["model_name"] == name]


def test_smart_and_fast_each_reach_their_own_server_through_the_adapter() -> None:
    config = load(render_config([("smart", SMART), ("fast", FAST)]))
    assert [e["model_name"] for e in config["model_list"]] == ["smart", "fast"]
    assert by_name(config, "smart") == [{"model": "llamafile/smart", "api_base": SMART}]
    assert by_name(config, "fast") == [{"model": "llamafile/fast", "api_base": FAST}]
    assert config["litellm_settings"]["custom_provider_map"] == [
        {"provider": "llamafile", "custom_handler": "litellm_llamafile.proxy.handler"}
    ]
    assert config["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY"}


def test_no_server_key_unless_asked_and_then_independent_of_the_master_key() -> None:
    plain = load(render_config([("smart", SMART)]))
    assert "api_key" not in by_name(plain, "smart")[0]  # nothing invented
    keyed = load(render_config([("smart", SMART), ("fast", FAST)], api_key_env="LLAMAFILE_API_KEY"))
    assert {p["api_key"] for p in by_name(keyed, "smart") + by_name(keyed, "fast")} == {
        "os.environ/LLAMAFILE_API_KEY"
    }
    assert keyed["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"


def test_a_repeated_name_makes_replicas_that_fail_fast_so_the_router_moves_on() -> None:
    config = load(render_config([("smart", SMART), ("fast", FAST), ("fast", FAST_2)]))
    replicas = by_name(config, "fast")
    assert [p["api_base"] for p in replicas] == [FAST, FAST_2]
    for params in replicas:
        assert params["model"] == "llamafile/fast"
        assert params["llamafile_connect_retries"] == 0
        assert params["llamafile_loading_wait"] == 0
    # A lone server keeps the adapter's own patience (waits while loading, retries a refused connection).
    assert "llamafile_connect_retries" not in by_name(config, "smart")[0]
    assert "llamafile_loading_wait" not in by_name(config, "smart")[0]
    router = config["router_settings"]
    assert router["routing_strategy"] == "simple-shuffle"
    assert router["enable_weighted_failover"] is True  # the failed replica is excluded on the re-pick
    assert router["max_fallbacks"] >= len(replicas)
    assert router["num_retries"] >= 1
    assert router["retry_after"] == 0
    assert router["allowed_fails"] == 0
    assert router["cooldown_time"] > 0


AFFINITY = "litellm_llamafile.proxy.conversation_affinity"
GUARD = "litellm_llamafile.proxy.request_guard"


def test_replica_groups_get_conversation_affinity_and_the_guard_stays() -> None:
    config = load(render_config([("smart", SMART), ("fast", FAST), ("fast", FAST_2)]))
    assert config["litellm_settings"]["callbacks"] == [GUARD, AFFINITY]
    # weighted failover needs simple-shuffle, which picks the one replica the filter leaves
    assert config["router_settings"]["routing_strategy"] == "simple-shuffle"
    lone = load(render_config([("smart", SMART), ("fast", FAST)]))
    assert lone["litellm_settings"]["callbacks"] == [GUARD]  # no replicas, nothing to route


@pytest.mark.parametrize("routing", ["simple-shuffle", "least-busy"])
def test_litellms_own_strategies_stay_selectable(routing: str) -> None:
    config = load(render_config([("fast", FAST), ("fast", FAST_2)], routing=routing))
    assert config["router_settings"]["routing_strategy"] == routing
    assert config["litellm_settings"]["callbacks"] == [GUARD]


def test_redis_settings_are_litellms_router_settings_and_never_hold_a_password() -> None:
    plain = load(
        render_config([("fast", FAST), ("fast", FAST_2)], redis=RedisSettings.parse("redis://10.0.0.9:6380"))
    )
    router = plain["router_settings"]
    assert (router["redis_host"], router["redis_port"]) == ("10.0.0.9", 6380)
    assert "redis_password" not in router
    assert plain["litellm_settings"]["default_redis_batch_cache_expiry"] <= 1
    keyed = RedisSettings.parse("redis://cache.internal", password_env="REDIS_PASSWORD")
    router = load(render_config([("fast", FAST)], redis=keyed))["router_settings"]
    assert (router["redis_host"], router["redis_port"]) == ("cache.internal", 6379)
    assert router["redis_password"] == "os.environ/REDIS_PASSWORD"
    assert "redis_host" not in load(render_config([("fast", FAST)]))["router_settings"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://:hunter2@10.0.0.9:6379", "credentials"),
        ("redis://user:hunter2@10.0.0.9", "credentials"),
        ("http://10.0.0.9:6379", "redis://"),
        ("redis://10.0.0.9:6379/2", "HOST:PORT"),
        ("redis://10.0.0.9:http", "port"),
    ],
)
def test_a_bad_redis_url_is_a_value_error_that_does_not_repeat_a_password(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        RedisSettings.parse(url)
    assert "hunter2" not in str(error.value)


def test_router_settings_can_be_tuned() -> None:
    router = load(
        render_config([("fast", FAST), ("fast", FAST_2)], num_retries=5, cooldown_time=2.5, allowed_fails=3)
    )["router_settings"]
    assert (router["num_retries"], router["cooldown_time"], router["allowed_fails"]) == (5, 2.5, 3)


def test_the_shipped_llamafile_yaml_is_what_the_generator_writes_for_env_bases() -> None:
    shipped = load((ROOT / "llamafile.yaml").read_text())
    generated = load(
        render_config(
            [("smart", "os.environ/LLAMAFILE_SMART_API_BASE"), ("fast", "os.environ/LLAMAFILE_FAST_API_BASE")]
        )
    )
    for section in ("model_list", "litellm_settings", "general_settings"):
        assert generated[section] == shipped[section]


def test_trailing_v1_and_slash_are_dropped_from_urls() -> None:
    config = load(render_config([("smart", "http://h:8080/v1/"), Deployment.parse("fast=https://h2/v1")]))
    assert [p["api_base"] for p in by_name(config, "smart") + by_name(config, "fast")] == [
        "http://h:8080",
        "https://h2",
    ]


def test_aliases_become_model_group_aliases() -> None:
    config = load(render_config([("smart", SMART), ("fast", FAST)], aliases={"gpt-4o": "smart"}))
    assert config["router_settings"]["model_group_alias"] == {"gpt-4o": "smart"}
    assert "model_group_alias" not in load(render_config([("smart", SMART)]))["router_settings"]


@pytest.mark.parametrize(
    ("deployments", "kwargs", "message"),
    [
        ([], {}, "at least one model"),
        ([("smart", "127.0.0.1:8080")], {}, "http://"),
        ([("", SMART)], {}, "non-empty"),
        ([("my model", SMART)], {}, "without spaces"),
        ([("smart", SMART), ("smart", SMART + "/v1")], {}, "listed twice"),
        ([("smart", "os.environ/")], {}, "environment variable name"),
        ([("smart", "os.environ/A B")], {}, "environment variable name"),
        ([("smart", SMART)], {"api_key_env": "NOT-A-NAME"}, "environment variable name"),
        ([("smart", SMART)], {"aliases": {"gpt-4o": "fast"}}, "not a --model name"),
        ([("smart", SMART)], {"aliases": {"smart": "smart"}}, "already a model name"),
        ([("smart", SMART)], {"num_retries": -1}, "negative"),
        ([("smart", SMART)], {"routing": "round-robin"}, "routing must be one of"),
        ([("smart", SMART)], {"max_tokens": 0}, "max_tokens must be at least 1"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_problem(
    deployments: list[tuple[str, str]], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render_config(deployments, **kwargs)


@given(
    name=st.text(min_size=1, max_size=30).filter(
        lambda s: s.strip() == s and not any(c.isspace() for c in s)
    ),
    path=st.text(max_size=30),
)
def test_any_name_and_url_read_back_exactly(name: str, path: str) -> None:
    url = f"http://127.0.0.1:8080/{path}"
    expected = Deployment.of(name, url)
    (params,) = by_name(load(render_config([expected], aliases={f"{name}-alias": name})), name)
    assert params == {"model": f"llamafile/{name}", "api_base": expected.api_base}


def test_main_prints_the_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--model", f"smart={SMART}", "--model", f"fast={FAST}", "--model", f"fast={FAST_2}"]
    assert main([*args, "--api-key-env", "LLAMAFILE_API_KEY", "--alias", "gpt-4o-mini=fast"]) == 0
    config = load(capsys.readouterr().out)
    assert [p["api_base"] for p in by_name(config, "fast")] == [FAST, FAST_2]
    assert by_name(config, "smart")[0]["api_key"] == "os.environ/LLAMAFILE_API_KEY"
    assert config["router_settings"]["model_group_alias"] == {"gpt-4o-mini": "fast"}


def test_main_takes_the_routing_and_redis_options(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--model", f"fast={FAST}", "--model", f"fast={FAST_2}", "--routing", "least-busy"]
    assert main([*args, "--redis", "redis://127.0.0.1:6390", "--redis-password-env", "REDIS_PASSWORD"]) == 0
    router = load(capsys.readouterr().out)["router_settings"]
    assert router["routing_strategy"] == "least-busy"
    assert (router["redis_host"], router["redis_port"], router["redis_password"]) == (
        "127.0.0.1",
        6390,
        "os.environ/REDIS_PASSWORD",
    )
    with pytest.raises(SystemExit):
        main([*args, "--redis", "redis://:secret@127.0.0.1"])
    assert "credentials" in capsys.readouterr().err


def test_max_tokens_caps_every_deployment_and_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    # AutoGPT sends no output cap: the deployment's max_tokens is the one LiteLLM passes on.
    capped = load(render_config([("smart", SMART), ("fast", FAST), ("fast", FAST_2)], max_tokens=512))
    assert [e["litellm_params"]["max_tokens"] for e in capped["model_list"]] == [512, 512, 512]
    assert "max_tokens" not in by_name(load(render_config([("smart", SMART)])), "smart")[0]
    assert main(["--model", f"smart={SMART}", "--max-tokens", "256"]) == 0
    assert by_name(load(capsys.readouterr().out), "smart")[0]["max_tokens"] == 256
    with pytest.raises(SystemExit):
        main(["--model", f"smart={SMART}", "--max-tokens", "-5"])
    assert "max_tokens must be at least 1" in capsys.readouterr().err


def test_main_writes_a_file(tmp_path: Path) -> None:
    target = tmp_path / "proxy.yaml"
    assert main(["--model", f"smart={SMART}", "-o", str(target)]) == 0
    assert by_name(load(target.read_text()), "smart")[0]["api_base"] == SMART


@pytest.mark.parametrize("spec", ["smart", "smart=localhost:8080", "=http://h"])
def test_main_rejects_a_bad_model_spec_with_a_usage_error(
    spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", spec])
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err
