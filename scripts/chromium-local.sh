#!/usr/bin/env bash
# Headless Chromium for the dashboard's browser tests, driven over WebDriver: Debian's
# `chromium` and `chromium-driver` (chromedriver), nothing downloaded at run time.
#
#   bash scripts/chromium-local.sh            start chromedriver on 127.0.0.1, print its URL
#   bash scripts/chromium-local.sh stop       stop it
#   bash scripts/chromium-local.sh status     print the URL if it is up (exit 1 if not)
#
# The last line `start` prints is the WebDriver URL (http://127.0.0.1:9515). Then:
#   AUTOARCH_E2E_WEBDRIVER=$url cargo test -p autoarch-agent --test browser -- --test-threads 1
# Environment: AUTOARCH_WEBDRIVER_PORT (9515), AUTOARCH_WEBDRIVER_HOME
# (~/.cache/autoarch/chromedriver: the pid file and the log).
set -euo pipefail
PORT=${AUTOARCH_WEBDRIVER_PORT:-9515}
HOME_DIR=${AUTOARCH_WEBDRIVER_HOME:-$HOME/.cache/autoarch/chromedriver}
URL="http://127.0.0.1:$PORT"
PIDFILE="$HOME_DIR/chromedriver.pid"
LOG="$HOME_DIR/chromedriver.log"
mkdir -p "$HOME_DIR"

say() { echo "chromium-local: $*" >&2; }
up() { curl -fsS "$URL/status" 2>/dev/null | grep -q '"ready": *true'; }
driver() { command -v chromedriver || ls /usr/lib/chromium/chromedriver 2>/dev/null; }

case "${1:-start}" in
start)
    if up; then echo "$URL"; exit 0; fi
    DRIVER=$(driver) || { say "no chromedriver: apt-get install chromium chromium-driver"; exit 1; }
    command -v chromium >/dev/null || { say "no chromium: apt-get install chromium chromium-driver"; exit 1; }
    nohup "$DRIVER" --port="$PORT" --allowed-ips=127.0.0.1 --log-path="$LOG" </dev/null >/dev/null 2>&1 &
    echo $! > "$PIDFILE"
    for _ in $(seq 1 100); do
        if up; then say "chromedriver up ($("$DRIVER" --version | head -1))"; echo "$URL"; exit 0; fi
        sleep 0.1
    done
    say "chromedriver did not come up; its log: $LOG"
    exit 1
    ;;
stop)
    if [ -f "$PIDFILE" ]; then kill "$(cat "$PIDFILE")" 2>/dev/null || true; rm -f "$PIDFILE"; fi
    pkill -f "chromedriver --port=$PORT" 2>/dev/null || true
    ;;
status)
    if up; then echo "$URL"; else exit 1; fi
    ;;
*)
    say "usage: $0 [start|stop|status]"; exit 2
    ;;
esac
