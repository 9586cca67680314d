"""`litellm-llamafile`: the one command.

    litellm-llamafile doctor http://127.0.0.1:8080   what your server can do through the adapter, the fixes
    litellm-llamafile config --model local=URL       the LiteLLM proxy yaml for your servers
    litellm-llamafile serve                          a real llama.cpp server (SmolLM2-135M), built once
    litellm-llamafile demo                           the main job: the adapter beside LiteLLM's built-in
    litellm-llamafile facts URL                      what a server's chat template accepts, probe by probe

`litellm-llamafile COMMAND --help` tells more. The `python -m litellm_llamafile.proxy_config`,
`.embedded_server` and `.template_facts` entry points keep working.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Callable, Sequence

from ..harness import embedded_server
from . import demo, doctor, proxy_config, template_facts

Main = Callable[[Sequence[str], str], int]
COMMANDS: dict[str, tuple[Main, str]] = {
    "doctor": (
        doctor.main,
        "probe a running server: what works through the adapter, the fix for what does not",
    ),
    "config": (proxy_config.main, "write the LiteLLM proxy yaml for your servers"),
    "serve": (embedded_server.main, "start a real llama.cpp server (SmolLM2-135M; llama-server built once)"),
    "demo": (demo.main, "the main job: an agent through the proxy, the adapter beside LiteLLM's built-in"),
    "facts": (template_facts.main, "what a server's chat template accepts, probe by probe"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="litellm-llamafile",
        description="A local llamafile / llama.cpp server as a first-class LiteLLM provider.",
        epilog="commands:\n" + "\n".join(f"  {name:8} {help}" for name, (_, help) in COMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    version = importlib.metadata.version("litellm-llamafile")
    parser.add_argument("--version", action="version", version=f"litellm-llamafile {version}")
    parser.add_argument("command", choices=COMMANDS, metavar="COMMAND", help=", ".join(COMMANDS))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command's own arguments")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    command, _ = COMMANDS[args.command]
    return command(args.args, f"litellm-llamafile {args.command}")


if __name__ == "__main__":
    raise SystemExit(main())
