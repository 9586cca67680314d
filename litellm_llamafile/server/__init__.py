"""What is known about one server: one `Server` per base URL (`servers.py`) owning its facts (`probe.py`,
`template_facts.py`), its caches and its connection pools."""
