"""The `litellm-llamafile` command: doctor, config, serve, demo (see main.py)."""
