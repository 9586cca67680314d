"""What a model wrote: its text read into reasoning, content and tool calls (`parsing.py`, every family's
format in `families.py`), for one reply or a stream. Pure."""
