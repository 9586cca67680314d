"""A real llama.cpp server from the package registries (`embedded_server.py`), for tests, benchmarks and a
first run."""
