#!/usr/bin/env bash
# Did my program post 3 times? One command with an exit code.
set -euo pipefail
PB=${PB:-./postbox}
posted=$(mktemp) box=
trap '[ -z "$box" ] || kill "$box" 2>/dev/null; rm -f "$posted"' EXIT   # leave nothing behind
"$PB" --count 3 --timeout 10 --pidfile postbox.pid --no-mq > "$posted" &
box=$!
"$PB" wait --socket socket --timeout 5          # returns as soon as postbox serves
echo hello > fifo                               # 1: the FIFO
echo world | nc -U socket                       # 2: the socket
/bin/kill -USR1 -q 42 "$(cat postbox.pid)"      # 3: a signal with a payload
wait "$box"; box=                              # exit 0: 3 messages; 3: --timeout first
cat "$posted"
