#!/usr/bin/env bash
# Smoke test the way users' CI scripts post: bash, nc, /bin/kill -q, postbox send.
# Installs nothing; says what it skips when a client is missing.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=$root/postbox
BUN=${BUN:-$(command -v bun || echo "$root/node_modules/.bin/bun")}
[ -x "$BIN" ] || { echo "smoke: $BIN is missing: run 'npm run build' first" >&2; exit 1; }

dir=$(mktemp -d)
mq=/pbsmoke_$$
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  "$BUN" "$root/test/helpers/mq-unlink.ts" "$mq"
  rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir"

passed=0 failed=0 skipped=0
ok() { echo "ok   - $1"; passed=$((passed + 1)); }
bad() { echo "FAIL - $1"; failed=$((failed + 1)); }
skip() { echo "skip - $1"; skipped=$((skipped + 1)); }
# wait_for CMD...: poll (with a deadline, not a fixed sleep) until CMD succeeds
wait_for() { for _ in $(seq 1 1000); do "$@" && return 0; sleep 0.01; done; return 1; }

"$BIN" --mq "$mq" > out.txt 2> err.txt &
pid=$!
if wait_for grep -q '\.\.\. by signal' err.txt; then ok "banner printed once every channel is ready"; else bad "no banner: $(cat err.txt)"; exit 1; fi

expected=1
echo 1 > fifo
wait_for grep -qx 'fifo: 1' out.txt && ok "echo 1 > fifo" || bad "echo 1 > fifo"

if command -v nc >/dev/null; then
  start=$(date +%s%N)
  echo 2 | nc -U socket
  took=$(( ($(date +%s%N) - start) / 1000000 ))
  [ "$took" -lt 2000 ] && ok "echo 2 | nc -U socket returned in ${took} ms" || bad "nc took ${took} ms"
  wait_for grep -Eqx "socket\[pid=[0-9]+,uid=$(id -u),gid=$(id -g)\]: 2" out.txt && ok "socket line with pid/uid/gid" || bad "socket line"
  expected=$((expected + 1))
else
  skip "nc (netcat-openbsd) is not installed: the nc checks did not run"
fi

/bin/kill -USR1 -q 3 "$pid"
wait_for grep -Eqx "signal\[pid=[0-9]+,uid=$(id -u),sig=SIGUSR1\]: 3" out.txt && ok "/bin/kill -USR1 -q 3" || bad "signal line"

"$BIN" send --mq "$mq" 4 && wait_for grep -qx 'mqueue\[prio=0\]: 4' out.txt && ok "postbox send --mq" || bad "mq line"
expected=$((expected + 2))

lines=$(wc -l < out.txt)
[ "$lines" -eq "$expected" ] && ok "exactly $expected lines on stdout" || bad "$lines lines on stdout, expected $expected"

kill -TERM "$pid"
wait "$pid"; rc=$?
pid=
[ "$rc" -eq 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: exit $rc"
[ ! -e fifo ] && [ ! -e socket ] && ok "fifo and socket removed" || bad "files left: $(ls)"

echo "smoke: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
