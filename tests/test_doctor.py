"""`litellm-llamafile doctor URL` tells a user the truth about their server: each line below is what a real
llama-server answered (replayed from cassettes; `pytest -m live` asks real servers again): a ChatML one,
a Mistral-template one, one started with `--api-key` (asked with and without its key) and, live only,
one serving embeddings."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from litellm_llamafile.cli import doctor
from litellm_llamafile.cli.doctor import Doctor, Finding, diagnose, healthy, render
from litellm_llamafile.harness.embedded_server import EmbeddedServer

from .support.servers import RECORDING_API_KEY, Servers


def by_topic(found: list[Finding]) -> dict[str, Finding]:
    return {finding.topic: finding for finding in found}


def check(url: str, api_key: str | None = None, embeddings: bool = True) -> dict[str, Finding]:
    return by_topic(diagnose(Doctor(url, api_key), embeddings=embeddings))


# -- against real servers ---------------------------------------------------------------------------


@pytest.mark.vcr
def test_a_chatml_server_works_and_its_gaps_come_with_their_fixes(servers: Servers) -> None:
    url = servers.url("chatml")
    found = check(url)
    assert found["server"].status == "ok"
    assert found["key"].text == "none needed"
    assert found["kind"].status == "ok" and "SmolLM2-135M-Instruct" in found["kind"].text
    assert found["roles"].text.startswith("llamafile_template=auto picks chatml (system role kept")
    assert found["tool call"].status == "ok" and "valid for its schema" in found["tool call"].text
    assert "get_weather(" in found["tool call"].text
    assert found["counts"].status == "ok" and found["counts"].text.startswith("exact: count_tokens ")
    assert found["embeddings"].status == "info" and found["embeddings"].text == "not served"
    assert "--embeddings --pooling mean" in found["embeddings"].fix
    assert found["vision"].text == "no vision" and "--mmproj" in found["vision"].fix
    assert found["jinja"].status == "ok", "the test servers run with --jinja"
    assert found["context"].text == "8192 tokens over 4 slots (2048 each)"
    assert "-c 16384" in found["context"].fix


@pytest.mark.vcr
def test_a_mistral_template_server_gets_the_strict_roles_and_still_a_valid_call(servers: Servers) -> None:
    found = check(servers.url("mistral"), embeddings=False)
    assert found["roles"].text.startswith("llamafile_template=auto picks mistral (no system role")
    assert found["tool call"].status == "ok" and "valid for its schema" in found["tool call"].text
    assert found["counts"].status == "ok"
    assert healthy(list(found.values()))


@pytest.mark.vcr
def test_a_keyed_server_asked_without_its_key_says_how_to_pass_it_and_stops(servers: Servers) -> None:
    found = diagnose(Doctor(servers.url("keyed"), None))
    assert [f.topic for f in found] == ["server", "key"]
    assert found[1].status == "fail" and found[1].text == "the server was started with --api-key"
    assert "--api-key KEY" in found[1].fix and "LLAMAFILE_API_KEY" in found[1].fix
    assert not healthy(found)


@pytest.mark.vcr
def test_a_keyed_server_asked_with_its_key_works_and_the_key_is_never_printed(servers: Servers) -> None:
    found = diagnose(Doctor(servers.url("keyed"), RECORDING_API_KEY), embeddings=False)
    topics = by_topic(found)
    assert topics["key"].status == "ok" and "the key given works" in topics["key"].text
    assert topics["tool call"].status == "ok" and topics["counts"].status == "ok"
    report = render(servers.url("keyed"), found, doctor.proxy_yaml("local", servers.url("keyed"), keyed=True))
    assert RECORDING_API_KEY not in report
    assert 'api_key: "os.environ/LLAMAFILE_API_KEY"' in report


@pytest.mark.vcr
def test_a_wrong_key_is_refused_by_name(servers: Servers) -> None:
    found = diagnose(Doctor(servers.url("keyed"), "sk-not-the-key"))
    assert found[-1].status == "fail" and found[-1].text == "the server refused the key given"


@pytest.mark.live  # a real socket: the replay tier blocks the network
def test_nothing_listening_is_one_line_with_how_to_start_a_server(dead_url: str) -> None:
    found = diagnose(Doctor(dead_url, None))
    assert len(found) == 1 and found[0].status == "fail"
    assert found[0].text == f"nothing answers at {dead_url}" and "llama-server -m MODEL.gguf" in found[0].fix


@pytest.fixture(scope="module")
def embeddings_url(live: bool) -> Iterator[str]:
    if not live:
        pytest.skip("needs a real embeddings server: run with -m live")
    server = EmbeddedServer(extra_args=("--embeddings", "--pooling", "mean")).start()
    try:
        yield server.base_url
    finally:
        server.stop()


@pytest.mark.live
def test_an_embeddings_server_reports_its_dimensions(embeddings_url: str) -> None:
    found = check(embeddings_url)
    assert found["embeddings"].status == "ok" and found["embeddings"].text == "served: 576 dimensions"
    # llama-server with --embeddings serves only embeddings: the chat checks say so, they do not pass
    assert found["server"].status == "ok"


@pytest.mark.live
def test_the_command_prints_the_report_and_the_yaml_and_exits_0(
    servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    code = doctor.main([servers.url("chatml"), "--no-embeddings", "--name", "smol"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"litellm-llamafile doctor {servers.url('chatml')}")
    assert 'model: "llamafile/smol"' in out and "This server works through the adapter." in out


# -- what /props says, as the report words it (pure) -------------------------------------------------


@pytest.mark.live
def test_a_server_without_jinja_is_told_to_start_with_it(
    own_server: Callable[..., EmbeddedServer],
) -> None:
    server = own_server(template="chatml", extra_args=("--no-jinja",))
    found = check(server.base_url, embeddings=False)
    assert found["jinja"].status == "fix" and "start with `--jinja`" in found["jinja"].fix
    assert found["tool call"].status == "ok", "the adapter's generic tools need no Jinja"


def test_a_vision_server_and_a_classic_llamafile() -> None:
    props = {"chat_template": "x", "modalities": {"vision": True}}
    seeing = doctor.Server(props, doctor.info_from_props(props))
    assert doctor.vision_of(seeing).status == "ok"
    classic = doctor.Server({}, doctor.ServerInfo())
    assert doctor.kind_of(classic).text.startswith("classic llamafile server (0.8.x)")
    assert doctor.template_of(classic) == []
