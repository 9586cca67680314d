"""What the model is shown and held to: roles reshaped for a template (`roles.py`), tools as instructions
(`tools.py`, `signatures.py`) and as sampling constraints (`schemas.py`, `bounds.py`, `grammar.py`,
`constraints.py`). Pure."""
