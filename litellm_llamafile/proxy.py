"""Entry point for `litellm --config llamafile.yaml`.

The yaml names `litellm_llamafile.proxy.handler` as the custom handler of the `llamafile` provider;
importing this module is what routes `llamafile/` to the adapter inside the proxy process.
"""

from __future__ import annotations

from .routing import install

handler = install()
