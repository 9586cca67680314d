"""The base every layer reads: settings (one pydantic model, resolved per call), the LiteLLM errors every
failure becomes, and a small LRU. Imports nothing else of the package."""
