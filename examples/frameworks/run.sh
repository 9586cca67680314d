#!/usr/bin/env bash
# Each framework in its own venv (crewai pins openai/pydantic below what openai-agents needs), each on
# a ChatML and a Mistral-template SmolLM2 server, one JSON line per run into $OUT.
#
#   examples/frameworks/run.sh [framework ...]      # default: all four
#   FW_VENVS=/tmp OUT=/tmp/frameworks.jsonl examples/frameworks/run.sh dspy
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENVS=${FW_VENVS:-/tmp}
OUT=${OUT:-/tmp/frameworks.jsonl}
PY=${PYTHON:-python3.11}
FRAMEWORKS=("$@")
[ ${#FRAMEWORKS[@]} -gt 0 ] || FRAMEWORKS=(openai-agents smolagents dspy crewai)
declare -A VARIANTS=([openai-agents]="default required" [smolagents]="default" [dspy]="default json" [crewai]="default warm")

for fw in "${FRAMEWORKS[@]}"; do
  if [ ! -x "$VENVS/fw-$fw/bin/python" ]; then
    "$PY" -m venv "$VENVS/fw-$fw"
    "$VENVS/fw-$fw/bin/pip" install -q "$fw" -e "$ROOT"
  fi
done

for template in chatml mistral; do
  PORT=$("$ROOT/.venv/bin/python" -c 'from litellm_llamafile.embedded_server import free_port; print(free_port())')
  # A background job ignores SIGINT, and the harness's CLI stops only on Ctrl-C: serve from a tiny
  # wrapper that stops the server on SIGTERM.
  "$ROOT/.venv/bin/python" - "$template" "$PORT" > "/tmp/fw-server-$template.log" 2>&1 <<'EOF' &
import signal, sys, time
from litellm_llamafile.embedded_server import EmbeddedServer
server = EmbeddedServer(template=sys.argv[1], port=int(sys.argv[2]), slots=1).start()
signal.signal(signal.SIGTERM, lambda *_: (server.stop(), sys.exit(0)))
while True:
    time.sleep(3600)
EOF
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true' EXIT
  until curl -sf "http://127.0.0.1:$PORT/health" > /dev/null; do sleep 1; done
  for fw in "${FRAMEWORKS[@]}"; do
    for variant in ${VARIANTS[$fw]}; do
      echo "== $fw $variant on $template" >&2
      timeout 900 "$VENVS/fw-$fw/bin/python" "$ROOT/examples/frameworks/one_tool.py" "$fw" \
        "http://127.0.0.1:$PORT" --variant "$variant" --template "$template" 2> "/tmp/fw-$fw-$variant-$template.err" \
        | tail -1 | tee -a "$OUT" || echo "{\"framework\": \"$fw\", \"variant\": \"$variant\", \"template\": \"$template\", \"error\": \"timeout or crash\"}" | tee -a "$OUT"
    done
  done
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
  trap - EXIT
done
