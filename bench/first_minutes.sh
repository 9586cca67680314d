#!/usr/bin/env bash
# A user with a llamafile already running, following README's first screen: pip install, doctor, config,
# the proxy, a first forced tool call through it. Times each step and the whole (docs/getting-started.md).
#
#   bench/first_minutes.sh http://127.0.0.1:8080 [WHEEL]     WHEEL: a built wheel (default: build one now)
#
# Everything happens in a fresh folder outside the checkout, with a fresh venv; PIP_NO_CACHE_DIR=1 in the
# environment makes pip download everything as on a machine that never installed LiteLLM.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SERVER=${1:?the URL of a running llamafile / llama-server}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/first-minutes.XXXXXX")
PROXY_PID=""
trap '[[ -n $PROXY_PID ]] && kill $PROXY_PID 2>/dev/null; rm -rf "$WORK"' EXIT
WHEEL=${2:-}
if [[ -z $WHEEL ]]; then
  "$ROOT/.venv/bin/python" -m build --wheel --outdir "$WORK/dist" "$ROOT" > /dev/null 2>&1
  WHEEL=$(ls "$WORK"/dist/*.whl)
fi
cd "$WORK"
START=$(date +%s.%N)
step() {  # name, command...: run it, print its time and the time so far
  local name=$1 t0; shift
  t0=$(date +%s.%N)
  "$@"
  printf '== %-40s %6.1f s   (total %6.1f s)\n' "$name" "$(echo "$(date +%s.%N) - $t0" | bc)" "$(echo "$(date +%s.%N) - $START" | bc)"
}

step "python -m venv" python3 -m venv venv
step "pip install 'litellm-llamafile[proxy]'" sh -c "venv/bin/pip install -q --disable-pip-version-check '$WHEEL[proxy]' 2>&1 | grep -v 'is ignored' || true"
step "litellm-llamafile doctor URL" sh -c "venv/bin/litellm-llamafile doctor '$SERVER' | tee doctor.txt"
step "litellm-llamafile config > proxy.yaml" sh -c "venv/bin/litellm-llamafile config --model local='$SERVER' > proxy.yaml"
export LITELLM_MASTER_KEY="sk-$(openssl rand -hex 24)" LITELLM_LOCAL_MODEL_COST_MAP=True
start_proxy() {
  venv/bin/litellm --config proxy.yaml --host 127.0.0.1 --port 4000 > proxy.log 2>&1 &
  PROXY_PID=$!
  until curl -sf http://127.0.0.1:4000/health/liveliness > /dev/null; do
    kill -0 $PROXY_PID || { cat proxy.log; exit 1; }
    sleep 0.5
  done
}
step "litellm --config proxy.yaml (until live)" start_proxy
first_call() {
  curl -sf http://127.0.0.1:4000/v1/chat/completions -H "Authorization: Bearer $LITELLM_MASTER_KEY" \
    -H "Content-Type: application/json" -d '{"model": "local",
      "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
      "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
        "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
      "tool_choice": "required", "max_tokens": 64}' > reply.json
  venv/bin/python -c '
import json, jsonschema
call = json.load(open("reply.json"))["choices"][0]["message"]["tool_calls"][0]["function"]
schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
jsonschema.validate(json.loads(call["arguments"]), schema)
print("first tool call through the proxy:", call["name"], call["arguments"], "(valid for its schema)")'
}
step "first forced tool call through the proxy" first_call
