#!/usr/bin/env bash
# Quick start: the relay end to end on this machine with the default
# config/esets.cfg. Starts a private clamd on 127.0.0.1:3310 (with a small
# signature database written here: no internet needed), Postfix's smtp-sink
# as the mail server on 127.0.0.1:2526 and the relay on 127.0.0.1:2525, then
# sends a clean message and an EICAR test message through it.
#   --once   stop everything after the two messages (exit 0 if both went right)
set -euo pipefail
cd "$(dirname "$0")/.."
once=false
[ "${1:-}" = "--once" ] && once=true

[ "${QUICKSTART_SKIP_INSTALL:-}" = 1 ] || bash scripts/install-deps.sh

run="$PWD/.run"
rm -rf "$run"
mkdir -p "$run/clamd/db" "$run/mail"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port PORT: until something accepts on 127.0.0.1:PORT (60 s at most)
wait_port() {
  node -e '
    const net = require("node:net"); const port = Number(process.argv[1]); const end = Date.now() + 60000;
    (function attempt() {
      const s = net.connect(port, "127.0.0.1");
      s.on("connect", () => { s.destroy(); process.exit(0); });
      s.on("error", () => Date.now() > end ? process.exit(1) : setTimeout(attempt, 200));
    })();' "$1"
}

# the default config/esets.cfg wants these loopback ports; refuse to mix with something else on them
for port in 2525 2526 3310; do
  if node -e 'const s=require("node:net").connect(Number(process.argv[1]),"127.0.0.1");s.on("connect",()=>process.exit(0));s.on("error",()=>process.exit(1))' "$port"; then
    echo "port $port on 127.0.0.1 is already in use: stop what listens there (the quick start needs 2525, 2526 and 3310)"
    exit 1
  fi
done

# EICAR, by MD5 of the file and by content anywhere in a message
eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
printf '%s:%s:Eicar-Test-Signature\n' "$(printf '%s' "$eicar" | md5sum | cut -d' ' -f1)" "${#eicar}" > "$run/clamd/db/quickstart.hdb"
printf 'Eicar-Test-Signature-Content:0:*:%s\n' "$(printf '%s' "$eicar" | od -An -tx1 | tr -d ' \n')" > "$run/clamd/db/quickstart.ndb"
cat > "$run/clamd/clamd.conf" <<CONF
Foreground yes
User $(id -un)
TCPSocket 3310
TCPAddr 127.0.0.1
DatabaseDirectory $run/clamd/db
LogFile $run/clamd/clamd.log
CONF
# the settings the relay needs (limits, and alerts for what is beyond them), as README asks of every clamd
cat config/clamd-esets-relay.conf >> "$run/clamd/clamd.conf"
clamd -c "$run/clamd/clamd.conf" > /dev/null 2>&1 & pids+=($!)

user_opt=()
[ "$(id -u)" = 0 ] && user_opt=(-u root)
smtp-sink "${user_opt[@]}" -d "$run/mail/%Y%m%d%H%M%S." 127.0.0.1:2526 100 > "$run/smtp-sink.log" 2>&1 & pids+=($!)

wait_port 3310 || { echo "clamd did not start: see $run/clamd/clamd.log"; exit 1; }
wait_port 2526 || { echo "smtp-sink did not start: see $run/smtp-sink.log"; exit 1; }
node bin/esets_smtp.js > "$run/relay.log" 2>&1 & pids+=($!)
wait_port 2525 || { echo "the relay did not start: see $run/relay.log"; cat "$run/relay.log"; exit 1; }
echo "relay listening on 127.0.0.1:2525 -> mail server 127.0.0.1:2526, clamd 127.0.0.1:3310 (logs in $run)"

echo; echo "== a clean message"
clean=$(swaks --server 127.0.0.1:2525 --from sender@example.com --to user@example.org \
  --header "Subject: esets-relay quick start" --body "Hello through esets-relay." 2>&1 || true)
echo "$clean" | grep -E '^(<-|<\*\*) +[0-9]{3} ' | tail -2
echo; echo "== an EICAR test message"
infected=$(swaks --server 127.0.0.1:2525 --from sender@example.com --to user@example.org \
  --header "Subject: EICAR" --body "$eicar" 2>&1 || true)
echo "$infected" | grep -E '^(<-|<\*\*) +[0-9]{3} ' | tail -2

echo; echo "== what the mail server received"
received=$(cat "$run"/mail/* 2>/dev/null || true)
echo "$received" | sed -n '1,/^$/p'

ok=true
echo "$clean" | grep -qE '^<- +250 .*Ok' || ok=false
echo "$infected" | grep -qE '^<\*\* +550 5\.7\.1 .*Eicar' || ok=false
echo "$received" | grep -q '^X-Virus-Scanner: esets-relay .*; clean' || ok=false
echo "$received" | grep -q 'EICAR-STANDARD' && ok=false

if $once; then
  $ok && echo "quick start: OK" || { echo "quick start: FAILED"; exit 1; }
  exit 0
fi
$ok || echo "(something went wrong above; see $run/*.log)"
echo; echo "The relay keeps running: try  swaks --server 127.0.0.1:2525 --to you@example.org  (Ctrl-C stops everything)"
wait
