"""The `litellm-llamafile` command (main.py): doctor, config (proxy_config.py), serve, demo (demo.py with
demo_agent.py), facts (template_facts.py)."""
