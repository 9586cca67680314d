"""No cassette holds a credential: the recording key, a bearer token or an Authorization header.

The keyed server is recorded with tests.conftest.RECORDING_API_KEY; vcr_config drops the headers and
scrubs the key from bodies. This scans every file under cassettes/ so a new cassette cannot slip one in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .support.servers import CASSETTES, RECORDING_API_KEY

FILES = sorted(path for path in CASSETTES.rglob("*") if path.is_file())
# A recorded header is a YAML key (`authorization:` / `Authorization:`), possibly quoted.
AUTH_HEADER = re.compile(r"""^\s*['"]?(authorization|x-api-key)['"]?\s*:""", re.IGNORECASE | re.MULTILINE)


def test_there_are_cassettes_to_scan() -> None:
    assert FILES, f"no cassettes under {CASSETTES}"
    assert RECORDING_API_KEY  # an empty key would make the scans below vacuous


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(CASSETTES)))
def test_no_cassette_holds_a_credential(path: Path) -> None:
    text = path.read_bytes().decode("utf-8", "replace")
    assert RECORDING_API_KEY not in text
    assert "Bearer " not in text
    assert not AUTH_HEADER.search(text), "a recorded Authorization / X-Api-Key header"
