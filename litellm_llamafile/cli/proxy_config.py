"""Generate a LiteLLM proxy config (yaml) for llamafile / llama.cpp servers.

    python -m litellm_llamafile.proxy_config --model smart=http://127.0.0.1:8080 \\
        --model fast=http://127.0.0.1:8081
    python -m litellm_llamafile.proxy_config --model fast=http://10.0.0.5:8080 \\
        --model fast=http://10.0.0.6:8080 --api-key-env LLAMAFILE_API_KEY > proxy.yaml
    LITELLM_MASTER_KEY=sk-... litellm --config proxy.yaml --host 127.0.0.1 --port 4000

Each `--model NAME=URL` is one deployment: a server that answers requests for the model name NAME. The
same NAME given twice or more makes replicas: LiteLLM's Router spreads requests over them and, when one
fails, retries the request on another. URL may also be `os.environ/VAR` (read by the proxy at start).

What the generated file contains:

* `model_list`: one entry per deployment, `model: llamafile/NAME` (so the adapter handles it) and its
  `api_base`. With `--api-key-env VAR`, `api_key: os.environ/VAR` on every deployment: that is the
  llamafile servers' `--api-key`, sent to them, never to clients.
* For a replicated name, each deployment gets `llamafile_connect_retries: 0` and
  `llamafile_loading_wait: 0`: the adapter gives up on a dead or still-loading server at once and
  the Router moves the request to another replica. A name served by one server keeps the adapter's
  defaults (retry a refused connection, wait while the model loads), since there is nowhere else to go.
* `router_settings.routing_strategy` and, for replicated names with `--routing conversation` (the
  default), `litellm_llamafile.proxy.conversation_affinity` among the callbacks: each
  conversation's turns go to one replica, the one holding its prompt prefix (rendezvous hashing of the
  conversation's opening, bounded by each server's slots; see `replica_routing`). `--routing
  simple-shuffle` or `least-busy` gives LiteLLM's own strategies instead. Names served by one server are
  not affected.
* With `--redis redis://HOST:PORT` (and `--redis-password-env VAR`): `router_settings.redis_host` /
  `redis_port` / `redis_password`, the Router's shared state: several proxies in front of the same
  servers then share cooldowns, usage and the conversations' homes. `litellm_settings.
  default_redis_batch_cache_expiry` (1 s) makes a proxy read the others' cooldowns at least every second.
* `router_settings`: `enable_weighted_failover`, so a request that failed on one replica is re-sent to
  another one (the failed one excluded), `num_retries` (default 2) with no wait while a healthy replica
  is left, and `allowed_fails: 0` with `cooldown_time` (default 10 s): a replica that answered 503 or
  another server error leaves the rotation for that long. LiteLLM never cools a deployment down for a
  connection error (a dead server); the failover is what routes around it. A name with one server
  is never cooled down (LiteLLM's rule), its retries back off instead.
* `litellm_settings.custom_provider_map`: the `llamafile` provider, `litellm_llamafile.proxy.handler`,
  and `litellm_settings.callbacks`: `litellm_llamafile.proxy.request_guard`, which refuses request-level
  `llamafile_*` options other than the behaviour ones and lets a deployment's own values win.
* `general_settings.master_key: os.environ/LITELLM_MASTER_KEY`: the proxy's own key, what clients
  send. It is independent of the servers' `--api-key`.
* With `--max-tokens N`, `max_tokens: N` on every deployment: the output cap of a request that sets
  none (a request's own `max_tokens` wins). AutoGPT sets none, and a small model then writes until the
  context is full.
* With `--alias PUBLIC=NAME`: `router_settings.model_group_alias`, so clients that only accept
  names they know (AutoGPT: `gpt-4o`, `gpt-4o-mini`, ...) reach NAME.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import PROVIDER
from ..core.settings import mask_userinfo, normalize_api_base
from ..harness.embedded_server import free_port
from ..wire.transport import health_status

ENV_PREFIX = "os.environ/"
DEFAULT_MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
HANDLER = "litellm_llamafile.proxy.handler"
REQUEST_GUARD = "litellm_llamafile.proxy.request_guard"
CONVERSATION_AFFINITY = "litellm_llamafile.proxy.conversation_affinity"
ROUTING_CHOICES = ("conversation", "simple-shuffle", "least-busy")
DEFAULT_ROUTING = "conversation"
REDIS_BATCH_READ_SECONDS = 1.0
DEFAULT_NUM_RETRIES = 2
DEFAULT_COOLDOWN_SECONDS = 10.0
DEFAULT_ALLOWED_FAILS = 0


@dataclass(frozen=True)
class Deployment:
    """One server answering for one public model name."""

    name: str
    api_base: str

    @classmethod
    def parse(cls, spec: str) -> Deployment:
        """`NAME=URL` (or `NAME=os.environ/VAR`) -> Deployment; ValueError names what is wrong."""
        name, sep, url = spec.partition("=")
        if not sep:
            raise ValueError(f"expected NAME=URL, got {spec!r}")
        return cls.of(name, url)

    @classmethod
    def of(cls, name: str, api_base: str) -> Deployment:
        name, api_base = name.strip(), api_base.strip()
        if not name or any(ch.isspace() for ch in name):
            raise ValueError(f"model name {name!r} must be non-empty, without spaces")
        if api_base.startswith(ENV_PREFIX):
            return cls(name, _env_ref(api_base[len(ENV_PREFIX) :]))
        if not api_base.startswith(("http://", "https://")):
            shown = mask_userinfo(api_base)
            raise ValueError(f"server URL for {name!r} must start with http:// or https://, got {shown!r}")
        return cls(name, normalize_api_base(api_base))


def _scalar(value: object) -> str:
    """A yaml scalar. Strings are double-quoted with every character outside printable ASCII escaped
    (yaml's \\uXXXX / \\UXXXXXXXX), so any name or URL reads back exactly; numbers and booleans as JSON."""
    if not isinstance(value, str):
        return json.dumps(value)
    out = []
    for char in value:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _env_ref(variable: str) -> str:
    variable = variable.strip()
    if not variable or not all(ch.isalnum() or ch == "_" for ch in variable):
        raise ValueError(f"environment variable name {variable!r} must be letters, digits and '_'")
    return f"{ENV_PREFIX}{variable}"


@dataclass(frozen=True)
class RedisSettings:
    """Where the proxies' shared Router state lives; the password only ever as an environment reference."""

    host: str
    port: int
    password_env: str | None = None

    @classmethod
    def parse(cls, url: str, password_env: str | None = None) -> RedisSettings:
        """`redis://HOST[:PORT]` -> RedisSettings; ValueError names what is wrong. A password in the URL is
        refused: it would be written into the yaml (use `password_env`)."""
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme != "redis" or not parts.hostname:
            raise ValueError(f"--redis must look like redis://HOST:PORT, got {parts.scheme or 'no'} scheme")
        if parts.password or parts.username:
            raise ValueError("the Redis URL must not hold credentials: give --redis-password-env VAR instead")
        if parts.path not in ("", "/") or parts.query:
            raise ValueError("the Redis URL takes only HOST:PORT (no database path or query)")
        try:
            port = parts.port or 6379
        except ValueError:
            raise ValueError("the Redis port must be a number from 1 to 65535") from None
        return cls(parts.hostname, port, _env_ref(password_env) if password_env else None)


def render_config(
    deployments: Iterable[Deployment | tuple[str, str]],
    *,
    api_key_env: str | None = None,
    master_key_env: str = DEFAULT_MASTER_KEY_ENV,
    aliases: Mapping[str, str] | None = None,
    num_retries: int = DEFAULT_NUM_RETRIES,
    cooldown_time: float = DEFAULT_COOLDOWN_SECONDS,
    allowed_fails: int = DEFAULT_ALLOWED_FAILS,
    routing: str = DEFAULT_ROUTING,
    redis: RedisSettings | None = None,
    max_tokens: int | None = None,
) -> str:
    """The proxy yaml for these deployments (see the module docstring). Pure: no I/O, no environment."""
    items = [d if isinstance(d, Deployment) else Deployment.of(*d) for d in deployments]
    alias_map = dict(aliases or {})
    counts = _checked_counts(items, alias_map)
    if num_retries < 0 or allowed_fails < 0 or cooldown_time < 0:
        raise ValueError("num_retries, allowed_fails and cooldown_time must not be negative")
    if routing not in ROUTING_CHOICES:
        raise ValueError(f"routing must be one of {', '.join(ROUTING_CHOICES)}, got {routing!r}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    key_ref = _env_ref(api_key_env) if api_key_env else None
    largest = max(counts.values())
    affine = routing == "conversation" and largest > 1
    lines = [
        "# LiteLLM proxy config for llamafile / llama.cpp servers (litellm-llamafile config)",
        "# Run: LITELLM_MASTER_KEY=sk-... litellm --config <this file> --host 127.0.0.1 --port 4000",
        *_model_list(items, counts, key_ref, max_tokens),
        "router_settings:",
        f"  routing_strategy: {_scalar('least-busy' if routing == 'least-busy' else 'simple-shuffle')}"
        + ("   # picks the one replica conversation_affinity leaves" if affine else ""),
        f"  num_retries: {num_retries}",
        "  retry_after: 0",
        "  enable_weighted_failover: true   # a failed replica is excluded and the request re-picked",
        f"  max_fallbacks: {max(5, largest)}",
        f"  allowed_fails: {allowed_fails}",
        f"  cooldown_time: {_scalar(cooldown_time)}",
        *_redis_and_aliases(redis, alias_map),
        *_litellm_settings(affine=affine, redis=redis is not None),
        "general_settings:",
        f"  master_key: {_scalar(_env_ref(master_key_env))}   # the proxy's own key (clients send it)",
    ]
    return "\n".join(lines) + "\n"


def _checked_counts(items: Sequence[Deployment], aliases: Mapping[str, str]) -> dict[str, int]:
    """How many deployments serve each name; ValueError for no deployment, one listed twice, or an alias
    that points nowhere or hides a name."""
    if not items:
        raise ValueError("at least one model (NAME=URL) is needed")
    seen: set[tuple[str, str]] = set()
    counts: dict[str, int] = {}
    for item in items:
        if (item.name, item.api_base) in seen:
            raise ValueError(f"{item.name}={mask_userinfo(item.api_base)} is listed twice")
        seen.add((item.name, item.api_base))
        counts[item.name] = counts.get(item.name, 0) + 1
    for public, target in aliases.items():
        if target not in counts:
            raise ValueError(f"alias {public!r} points at {target!r}, which is not a --model name")
        if public in counts:
            raise ValueError(f"alias {public!r} is already a model name")
    return counts


def _model_list(
    items: Sequence[Deployment], counts: Mapping[str, int], key_ref: str | None, max_tokens: int | None
) -> list[str]:
    lines = ["model_list:"]
    numbers: dict[str, int] = {}
    for item in items:
        replicated = counts[item.name] > 1
        numbers[item.name] = numbers.get(item.name, 0) + 1
        note = f"  # replica {numbers[item.name]} of {counts[item.name]}" if replicated else ""
        lines += [
            f"  - model_name: {_scalar(item.name)}{note}",
            "    litellm_params:",
            f"      model: {_scalar(f'{PROVIDER}/{item.name}')}",
            f"      api_base: {_scalar(item.api_base)}",
        ]
        if key_ref:
            lines.append(f"      api_key: {_scalar(key_ref)}   # the server's --api-key")
        if max_tokens is not None:
            lines.append(f"      max_tokens: {max_tokens}   # output cap for clients that set none")
        if replicated:
            lines += [
                "      llamafile_connect_retries: 0   # dead replica: fail at once, the Router moves on",
                "      llamafile_loading_wait: 0      # loading replica (503): same",
            ]
    return lines


def _redis_and_aliases(redis: RedisSettings | None, aliases: Mapping[str, str]) -> list[str]:
    """The rest of router_settings: the shared Redis and the model name aliases."""
    lines = []
    if redis is not None:
        lines += [
            "  # shared by every proxy in front of these servers: cooldowns, usage, conversation homes",
            f"  redis_host: {_scalar(redis.host)}",
            f"  redis_port: {redis.port}",
        ]
        if redis.password_env:
            lines.append(f"  redis_password: {_scalar(redis.password_env)}")
    if aliases:
        lines.append("  model_group_alias:")
        lines += [f"    {_scalar(public)}: {_scalar(target)}" for public, target in aliases.items()]
    return lines


def _litellm_settings(*, affine: bool, redis: bool) -> list[str]:
    lines = [
        "litellm_settings:",
        "  custom_provider_map:",
        f"    - provider: {_scalar(PROVIDER)}",
        f"      custom_handler: {_scalar(HANDLER)}",
        "  callbacks:   # clients may set only the behaviour options; never where a request goes",
        f"    - {_scalar(REQUEST_GUARD)}",
    ]
    if affine:
        lines.append(f"    - {_scalar(CONVERSATION_AFFINITY)}   # a conversation's turns stay on one replica")
    if redis:
        lines.append(f"  default_redis_batch_cache_expiry: {_scalar(REDIS_BATCH_READ_SECONDS)}")
    return lines


def _alias(spec: str) -> tuple[str, str]:
    public, sep, target = spec.partition("=")
    if not sep or not public.strip() or not target.strip():
        raise ValueError(f"expected PUBLIC=NAME, got {spec!r}")
    return public.strip(), target.strip()


@contextlib.contextmanager
def supervised_process(
    command: Sequence[str],
    *,
    log: Path,
    ready: Callable[[], bool],
    timeout: float,
    what: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `command` (output to `log`), wait until `ready()` says it serves, yield it, always stop it.
    A harness for the servers tests and examples start (the proxy, redis-server); RuntimeError names
    the log when the child exits first, TimeoutError when `timeout` passes."""
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=cwd)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited:\n{log.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not start; see {log}")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def running_proxy(
    config: Path,
    *,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    master_key: str | None = None,
    timeout: float = 180.0,
) -> Iterator[tuple[str, str]]:
    """`litellm --config <config>` on 127.0.0.1 and a free port; yields (url, master key) once the
    proxy is live and always terminates it. The master key is a strong random one unless given."""
    key = master_key or "sk-" + secrets.token_urlsafe(32)
    port = free_port()
    child_env = {**os.environ, **(env or {}), "LITELLM_MASTER_KEY": key}
    child_env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    litellm_cli = Path(sys.executable).with_name("litellm")
    log = log or Path(tempfile.gettempdir()) / f"litellm-proxy-{port}.log"
    command = [str(litellm_cli), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"

    def live() -> bool:
        return health_status(f"{url}/health/liveliness") == 200

    with supervised_process(
        command,
        log=log,
        ready=live,
        timeout=timeout,
        what="the LiteLLM proxy",
        env=child_env,
        cwd=config.parent,
    ):
        yield url, key


def main(argv: Sequence[str] | None = None, prog: str = "python -m litellm_llamafile.proxy_config") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME=URL",
        help="a server for model NAME (repeat NAME for replicas); URL may be os.environ/VAR",
    )
    parser.add_argument("--api-key-env", metavar="VAR", help="variable holding the servers' --api-key")
    parser.add_argument("--master-key-env", metavar="VAR", default=DEFAULT_MASTER_KEY_ENV)
    parser.add_argument(
        "--alias", action="append", default=[], metavar="PUBLIC=NAME", help="another name for NAME"
    )
    parser.add_argument("--num-retries", type=int, default=DEFAULT_NUM_RETRIES)
    parser.add_argument("--cooldown-time", type=float, default=DEFAULT_COOLDOWN_SECONDS)
    parser.add_argument("--allowed-fails", type=int, default=DEFAULT_ALLOWED_FAILS)
    parser.add_argument(
        "--routing",
        choices=ROUTING_CHOICES,
        default=DEFAULT_ROUTING,
        help="how requests for a replicated name pick a replica (default: conversation)",
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        metavar="N",
        help="max_tokens on every deployment: an output cap for clients",
    )
    parser.add_argument("--redis", metavar="URL", help="redis://HOST:PORT shared by several proxies")
    parser.add_argument("--redis-password-env", metavar="VAR", help="variable holding the Redis password")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    args = parser.parse_args(argv)
    try:
        text = render_config(
            [Deployment.parse(spec) for spec in args.model],
            api_key_env=args.api_key_env,
            master_key_env=args.master_key_env,
            aliases=dict(_alias(spec) for spec in args.alias),
            num_retries=args.num_retries,
            cooldown_time=args.cooldown_time,
            allowed_fails=args.allowed_fails,
            routing=args.routing,
            redis=RedisSettings.parse(args.redis, args.redis_password_env) if args.redis else None,
            max_tokens=args.max_tokens,
        )
    except ValueError as error:
        parser.error(str(error))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as sink:
            sink.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
