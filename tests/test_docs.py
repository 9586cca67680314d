"""The architecture page names only what exists: every module path it quotes is a file of the
repository, and every function, class or constant it quotes is defined in the package (a module's own
name where it is written `module.name`). A rename that forgets the docs fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "litellm_llamafile"
PAGE = ROOT / "docs" / "architecture.md"
EXTERNAL = ("httpx.", "litellm.", "python ", "llamafile/", "llamafile_")  # LiteLLM's names, call options
REQUEST_FIELDS = {"max_tokens", "tools", "tool_choice", "messages", "response_format"}


def defined_names() -> dict[str, set[str]]:
    """module stem -> the names defined at its top level and in its classes."""
    names: dict[str, set[str]] = {}
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "tests" / "support").glob("*.py")]:
        found = names.setdefault(path.stem, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found.add(node.name)
            elif isinstance(node, ast.Assign):
                found.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                found.add(node.target.id)
    return names


def quoted() -> list[str]:
    return re.findall(r"`([^`\n]+)`", PAGE.read_text())


def test_every_file_the_page_quotes_exists() -> None:
    files = {str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py") if ".venv" not in p.parts}
    files.discard("")
    packaged = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*")}
    missing = []
    for token in quoted():
        for path in re.findall(r"[\w/]+\.(?:py|toml|md)\b", token):
            known = path in packaged or path in files or (ROOT / path).exists()
            if not known and not any(f.endswith("/" + path) for f in files):
                missing.append(path)
        folder = token.rstrip("/")
        layer = token.endswith("/") and token not in EXTERNAL and re.fullmatch(r"\w+", folder)
        if layer and not (PACKAGE / folder).is_dir():
            missing.append(token)
    assert not missing, missing


def test_every_name_the_page_quotes_is_defined() -> None:
    names = defined_names()
    everywhere = set().union(*names.values())
    missing = []
    for token in quoted():
        if token.startswith(EXTERNAL) or re.search(r"[\s=/\-]", token) or token in REQUEST_FIELDS:
            continue
        if re.search(r"\.(py|toml|md)$", token):
            continue
        dotted = re.sub(r"\(.*\)$", "", token).split(".")
        if not all(re.fullmatch(r"\w+", part) for part in dotted):
            continue
        if len(dotted) > 1 and dotted[0] in names:  # module.name
            if dotted[-1] not in names[dotted[0]]:
                missing.append(token)
        elif dotted[-1] not in everywhere and dotted[-1] not in names:
            missing.append(token)
    assert not missing, missing


def test_the_layout_table_lists_every_module() -> None:
    page = PAGE.read_text()  # the README is a landing page: the layers table lives on this page
    rows = {
        line.split("|")[1].strip(" `"): line for line in page.splitlines() if re.match(r"\| `\w+/` \|", line)
    }
    root = page[page.index("At the root:") :].split("\n\n")[0]
    for path in PACKAGE.rglob("*.py"):
        folder = path.parent.relative_to(PACKAGE).as_posix()
        if path.name == "__init__.py" and folder != ".":
            continue  # a layer's purpose, not a module
        listed = root if folder == "." else rows.get(f"{folder}/", "")
        assert f"`{path.name}`" in listed, f"{path.relative_to(ROOT)} is not in docs/architecture.md's layers"
