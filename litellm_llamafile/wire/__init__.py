"""How bytes move: the sans-IO protocol (`HttpCall`, flows, answer and event decoding) and the one
blocking and one async driver that run flows over HTTP (`transport.py`, the only place HTTP happens)."""
