"""Shared helpers for the bench scripts: timing statistics, tables, targets, JSON output, the stub server
process and the real llama.cpp server.

Not a test module and not part of the package: the scripts next to this file import it by name (they
run as `python bench/<script>.py`, so this directory is on sys.path).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# LiteLLM must not fetch its price map from GitHub at import: set before anything imports litellm.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
MODEL = "smollm2"  # the model name sent on every path (llama-server ignores it)

DEFAULT_REAL_URL = "http://127.0.0.1:18080"
DEFAULT_REAL_MISTRAL_URL = "http://127.0.0.1:18081"


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- arguments -----------------------------------------------------------------------------------------


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small N: a smoke run, not figures to quote")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every default repetition count (e.g. 3 for final figures on a quiet machine)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    return parser


def scaled(args: argparse.Namespace, full: int, quick: int, explicit: int | None = None) -> int:
    """A repetition count: an explicit -n wins, else the full or quick default times --scale."""
    if explicit is not None:
        return explicit
    return max(1, round((quick if args.quick else full) * args.scale))


def real_url_args(parser: argparse.ArgumentParser, *, mistral: bool = False) -> None:
    parser.add_argument(
        "--real-url",
        default=os.environ.get("BENCH_REAL_URL", DEFAULT_REAL_URL),
        help="a running llama.cpp server with a ChatML template (started with EmbeddedServer if it does "
        "not answer; env BENCH_REAL_URL)",
    )
    if mistral:
        parser.add_argument(
            "--real-mistral-url",
            default=os.environ.get("BENCH_REAL_MISTRAL_URL", DEFAULT_REAL_MISTRAL_URL),
            help="a running llama.cpp server with a Mistral-style template (env BENCH_REAL_MISTRAL_URL)",
        )


# -- statistics ----------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_stats(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/mean/min in milliseconds."""
    ms = [s * 1000.0 for s in seconds]
    if not ms:
        return {"n": 0, "p50_ms": math.nan, "p95_ms": math.nan, "mean_ms": math.nan, "min_ms": math.nan}
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "mean_ms": statistics.fmean(ms),
        "min_ms": min(ms),
    }


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


# -- targets -------------------------------------------------------------------------------------------


def target(name: str, value: float, op: str, threshold: float, unit: str = "") -> dict[str, Any]:
    """A target with its verdict; op is '<=', '<', '>=' or '=='."""
    checks = {
        "<=": lambda v: v <= threshold,
        "<": lambda v: v < threshold,
        ">=": lambda v: v >= threshold,
        "==": lambda v: v == threshold,
    }
    met = not (isinstance(value, float) and math.isnan(value)) and bool(checks[op](value))
    return {"target": name, "value": value, "op": op, "threshold": threshold, "unit": unit, "met": met}


def targets_table(targets: Sequence[dict[str, Any]]) -> str:
    rows = [
        [
            t["target"],
            fmt(t["value"]) + (f" {t['unit']}" if t["unit"] else ""),
            f"{t['op']} {fmt(t['threshold'])}",
            "met" if t["met"] else "MISSED",
        ]
        for t in targets
    ]
    return table(["target", "value", "goal", "verdict"], rows)


# -- tables and JSON -----------------------------------------------------------------------------------


def fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if abs(value) >= 100:
            return f"{value:.1f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[[fmt(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    import httpx
    import litellm  # noqa: F401  (version lookup below)

    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_1_5_15": [round(x, 2) for x in load],
        "litellm": version("litellm"),
        "httpx": httpx.__version__,
        "litellm_llamafile": version("litellm-llamafile"),
    }


def clean(value: Any) -> Any:
    """NaN -> None, recursively, so the JSON is strict."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    if not path:
        return
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(clean(payload), indent=2, sort_keys=False) + "\n")
    say(f"wrote {out}")


# -- servers -------------------------------------------------------------------------------------------


class StubServer:
    """The instant fake llama server (tests/support/fake_server.py) in its own process, so it never
    shares the GIL with the measured client."""

    def __init__(self, *, uvloop: bool = True) -> None:
        self._uvloop = uvloop
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""

    def start(self) -> StubServer:
        command = [sys.executable, "-m", "tests.support.fake_server", "--port", "0"]
        if not self._uvloop:
            command.append("--no-uvloop")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # the stub prints its URL once it listens (or dies: "")
        if not line.startswith("STUB_URL "):
            self.stop()
            raise RuntimeError(f"stub server did not start: {line!r}")
        self.base_url = line.split(" ", 1)[1].strip()
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def healthy(url: str, timeout: float = 3.0) -> bool:
    import httpx

    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


@contextmanager
def real_server(url: str | None, template: str = "chatml") -> Iterator[str]:
    """The running server at `url` if it answers /health, else a fresh EmbeddedServer (stopped after)."""
    if url and healthy(url):
        say(f"real {template} server: {url}")
        yield url.rstrip("/")
        return
    from litellm_llamafile.harness.embedded_server import EmbeddedServer

    say(f"no server answers at {url}; starting an EmbeddedServer(template={template!r}) ...")
    server = EmbeddedServer(template=template).start()
    try:
        say(f"real {template} server: {server.base_url}")
        yield server.base_url
    finally:
        server.stop()


def quiet_litellm() -> None:
    import litellm

    litellm.suppress_debug_info = True
    litellm.set_verbose = False
    litellm.telemetry = False


class AdapterCalls:
    """How many calls reached the adapter (wraps provider._prepare in this process only): proves which
    path really answered a benchmark call."""

    def __init__(self) -> None:
        import litellm_llamafile.integration.provider as provider

        self.count = 0
        original = provider._prepare

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(*args, **kwargs)

        provider._prepare = counted  # type: ignore[assignment]
