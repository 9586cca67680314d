"""Where LiteLLM meets the adapter: the custom handler (`provider.py`), the patches that route `llamafile/` to
it (`litellm_patches.py`), model info, the proxy's request guard and replica routing."""
