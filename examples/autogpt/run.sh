#!/usr/bin/env bash
# AutoGPT's classic agent, unmodified, on a local SmolLM2 llama-server through the LiteLLM proxy.
#
#   AUTOGPT_DIR=/path/to/checkout/classic/original_autogpt AUTOGPT_PYTHON=/path/to/venv/bin/python \
#     examples/autogpt/run.sh
#
# AUTOGPT_DIR: an existing checkout's classic agent folder (the one with autogpt/ and .env.template);
# AUTOGPT_PYTHON: a Python where that agent is installed (see docs/autogpt.md). Starts one llama-server
# (CTX tokens in one slot), writes a proxy yaml, starts `litellm --config`, runs the agent in continuous
# mode for CYCLES cycles on the seed's task, and stops everything. Logs go to $WORK.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
: "${AUTOGPT_DIR:?set AUTOGPT_DIR to the classic/original_autogpt folder of a checkout}"
AUTOGPT_PYTHON=${AUTOGPT_PYTHON:-python3}
PY="$ROOT/.venv/bin/python"
WORK=${WORK:-$(mktemp -d /tmp/autogpt-run.XXXX)}
CTX=${CTX:-16384}            # beyond SmolLM2's 8192 training length: see docs/autogpt.md
MAX_TOKENS=${MAX_TOKENS:-1024}  # AutoGPT sets no output cap; the thought and the call share it (see docs/autogpt.md)
THOUGHT_SCHEMA=${THOUGHT_SCHEMA:-$ROOT/examples/autogpt/thought_schema.json}  # AutoGPT's "thoughts" object
CYCLES=${CYCLES:-3}
TEMPLATE=${TEMPLATE:-chatml}
LLAMA_PORT=$("$PY" -c 'from litellm_llamafile.harness.embedded_server import free_port; print(free_port())')
PROXY_PORT=$("$PY" -c 'from litellm_llamafile.harness.embedded_server import free_port; print(free_port())')
export LITELLM_MASTER_KEY=${LITELLM_MASTER_KEY:-sk-$("$PY" -c 'import secrets; print(secrets.token_hex(24))')}
export LITELLM_LOCAL_MODEL_COST_MAP=True  # the proxy imports litellm first: no price-map download
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
echo "work folder: $WORK" >&2

# 1. llama-server: one slot holding the whole context, the trained length overridden so -c is honoured.
nice "$PY" - "$TEMPLATE" "$LLAMA_PORT" "$CTX" > "$WORK/llama-server.out" 2>&1 <<'EOF' &
import signal, sys, time
from litellm_llamafile.harness.embedded_server import EmbeddedServer
template, port, ctx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
server = EmbeddedServer(template=template, port=port, ctx_size=ctx, slots=1,
                        extra_args=["--override-kv", f"llama.context_length=int:{ctx}"]).start()
signal.signal(signal.SIGTERM, lambda *_: (server.stop(), sys.exit(0)))
while True:
    time.sleep(3600)
EOF
PIDS+=($!)
until curl -sf "http://127.0.0.1:$LLAMA_PORT/health" > /dev/null; do sleep 1; done

# 2. The proxy yaml: one model, the names this AutoGPT revision accepts as aliases, an output cap, and
#    the thought mode: every reply is AutoGPT's JSON "thoughts" object (content), then one call.
"$PY" -m litellm_llamafile.proxy_config --model "smol=http://127.0.0.1:$LLAMA_PORT" --max-tokens "$MAX_TOKENS" \
  --alias gpt-4o=smol --alias gpt-4o-mini=smol --alias gpt-3.5-turbo=smol -o "$WORK/proxy.yaml"
"$PY" - "$WORK/proxy.yaml" "$THOUGHT_SCHEMA" <<'EOF'
# The generator has no option for llamafile_* behaviour settings: add the thought mode to every deployment.
import json, sys, yaml
path, schema = sys.argv[1], json.load(open(sys.argv[2]))
config = yaml.safe_load(open(path))
for model in config["model_list"]:
    model["litellm_params"].update(llamafile_constrain_auto="thought", llamafile_thought_schema=schema)
yaml.safe_dump(config, open(path, "w"), sort_keys=False)
EOF

# 3. The proxy, on loopback only.
nice "$ROOT/.venv/bin/litellm" --config "$WORK/proxy.yaml" --host 127.0.0.1 --port "$PROXY_PORT" \
  > "$WORK/proxy.log" 2>&1 &
PIDS+=($!)
until curl -sf -H "Authorization: Bearer $LITELLM_MASTER_KEY" "http://127.0.0.1:$PROXY_PORT/v1/models" > /dev/null; do
  sleep 2
done

# 4. The agent, from its own folder, its settings in the environment (not in the checkout's .env).
cd "$AUTOGPT_DIR"
export OPENAI_API_BASE_URL="http://127.0.0.1:$PROXY_PORT/v1" OPENAI_API_KEY="$LITELLM_MASTER_KEY"
export SMART_LLM=${SMART_LLM:-gpt-4o} FAST_LLM=${FAST_LLM:-gpt-4o} OPENAI_FUNCTIONS=${OPENAI_FUNCTIONS:-True}
export TELEMETRY_OPT_IN=False RESTRICT_TO_WORKSPACE=True NONINTERACTIVE_MODE=True
# Loopback only: no web search (DuckDuckGo), browser or git clone; no model-written code run on this
# machine (in a Docker container AutoGPT runs it directly, not in a sandbox); ask_user would wait on stdin.
# It counts tokens with tiktoken's o200k_base (for gpt-4o), which tiktoken downloads on first use: offline,
# use the copy LiteLLM ships (named by the SHA-1 of its URL, as tiktoken's cache expects).
export TIKTOKEN_CACHE_DIR=${TIKTOKEN_CACHE_DIR:-$("$PY" -c 'import importlib.util, os
print(os.path.join(os.path.dirname(importlib.util.find_spec("litellm").origin), "litellm_core_utils", "tokenizers"))')}
export DISABLED_COMMANDS=${DISABLED_COMMANDS:-web_search,google,read_webpage,clone_repository,execute_python_code,execute_python_file,ask_user}
# stdin answers its prompts: an empty line (a new agent, if it lists saved ones), the task, then
# an empty line at the end (save the state under its own id).
printf '\n%s\n\n' "Tell me about Roman dodecahedrons." | timeout "${AGENT_TIMEOUT:-3600}" nice "$AUTOGPT_PYTHON" -m autogpt run --continuous --continuous-limit "$CYCLES" \
  --skip-news --skip-reprompt --ai-name Quaestor \
  --ai-role "a research assistant who answers the user's question. Task: Tell me about Roman dodecahedrons." \
  --log-level INFO 2>&1 | tee "$WORK/agent.log"
