"""`python -m litellm_llamafile` is the `litellm-llamafile` command."""

from .cli.main import main

raise SystemExit(main())
