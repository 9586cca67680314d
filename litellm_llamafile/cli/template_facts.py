"""Print what a server's chat template accepts (`server/template_facts.py`) and the role strategy it
gives.

    python -m litellm_llamafile.template_facts http://127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..core.settings import LlamafileSettings
from ..server.servers import SERVERS
from ..server.template_facts import facts_flow, report


def main(argv: Sequence[str] | None = None, prog: str = "python -m litellm_llamafile.template_facts") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Print what a server's template accepts.",
    )
    parser.add_argument("url", help="server root, e.g. http://127.0.0.1:8080")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args(argv)
    settings = LlamafileSettings.resolve(api_base=args.url, api_key=args.api_key)
    server = SERVERS.get(settings.api_base)
    try:
        facts = server.driver(settings, "llamafile").run(facts_flow())
    except Exception as error:  # a CLI: say what failed, no traceback
        print(
            f"could not learn the template facts: {getattr(error, 'message', None) or error}", file=sys.stderr
        )
        return 1
    print(report(facts, settings.public_base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
