"""`python -m litellm_llamafile.embedded_server` starts a real llama.cpp server from the package registries:
kept for existing scripts; the code is `litellm_llamafile/harness/embedded_server.py`."""

import sys

from .harness.embedded_server import main

if __name__ == "__main__":
    sys.exit(main())
