"""Entry points for `litellm --config llamafile.yaml`: the names the yaml imports.

The yaml names `litellm_llamafile.proxy.handler` as the custom handler of the `llamafile` provider;
importing this module is what routes `llamafile/` to the adapter inside the proxy process. It also names
`litellm_llamafile.proxy.request_guard` among the callbacks (the trust boundary for adapter options,
`integration/request_guard.py`), and replica groups routed by conversation name
`litellm_llamafile.proxy.conversation_affinity` (`integration/replica_routing.py`).
"""

from __future__ import annotations

from .integration.litellm_patches import install
from .integration.replica_routing import ConversationAffinity
from .integration.request_guard import RequestOptionGuard

handler = install()
request_guard = RequestOptionGuard()
# The Router's deployment filter that keeps a conversation on the replica holding its prompt prefix.
conversation_affinity = ConversationAffinity()
