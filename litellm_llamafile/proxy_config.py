"""`python -m litellm_llamafile.proxy_config` writes a proxy yaml for your servers:
kept for existing scripts; the code is `litellm_llamafile/cli/proxy_config.py`."""

import sys

from .cli.proxy_config import main

if __name__ == "__main__":
    sys.exit(main())
