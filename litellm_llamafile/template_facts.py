"""`python -m litellm_llamafile.template_facts` prints what a server's template accepts:
kept for existing scripts; the code is `litellm_llamafile/cli/template_facts.py`."""

import sys

from .cli.template_facts import main

if __name__ == "__main__":
    sys.exit(main())
