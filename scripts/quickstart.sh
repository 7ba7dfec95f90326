#!/usr/bin/env bash
# Quick start: the relay end to end on this machine with the default config/esets.cfg. Installs what it
# runs (scripts/install-deps.sh: no mail server), then starts a private clamd (with a small signature
# database written here: no internet needed), the project's own mail server (dist/src/tools/quickstart_sink.js,
# which stores each message it receives to a file) and the relay, all on 127.0.0.1, then sends a clean
# message and an EICAR test message through the relay.
#   --once   stop everything after the two messages (exit 0 if both went right)
# Environment:
#   QUICKSTART_RELAY_PORT   the relay's port (default 2525)
#   QUICKSTART_SERVER_PORT  the mail server's port (default 2526)
#   QUICKSTART_CLAMD_PORT   clamd's port (default 3310)
#   QUICKSTART_RUN_DIR      the folder for logs, clamd's database and the mail received, new or empty
#                           (default .run, emptied first)
#   QUICKSTART_SKIP_INSTALL=1  install nothing (the packages and the build are there already)
set -euo pipefail
cd "$(dirname "$0")/.."
once=false
[ "${1:-}" = "--once" ] && once=true
relay_port=${QUICKSTART_RELAY_PORT:-2525}
server_port=${QUICKSTART_SERVER_PORT:-2526}
clamd_port=${QUICKSTART_CLAMD_PORT:-3310}
for port in "$relay_port" "$server_port" "$clamd_port"; do
  [[ "$port" =~ ^[1-9][0-9]{0,4}$ ]] && [ "$port" -le 65535 ] || { echo "not a port: '$port'"; exit 1; }
done
if [ "$relay_port" = "$server_port" ] || [ "$relay_port" = "$clamd_port" ] || [ "$server_port" = "$clamd_port" ]; then
  echo "the relay, the mail server and clamd need three different ports (got $relay_port, $server_port, $clamd_port)"
  exit 1
fi

[ "${QUICKSTART_SKIP_INSTALL:-}" = 1 ] || bash scripts/install-deps.sh
[ -f dist/src/tools/quickstart_sink.js ] || { echo "not built: npm ci && npm run build (or run without QUICKSTART_SKIP_INSTALL)"; exit 1; }

if [ -n "${QUICKSTART_RUN_DIR:-}" ]; then
  run=$(realpath -m "$QUICKSTART_RUN_DIR")
  [ ! -e "$run" ] || [ -d "$run" ] || { echo "QUICKSTART_RUN_DIR: $run is not a folder"; exit 1; }
  [ -z "$(ls -A "$run" 2>/dev/null)" ] || { echo "QUICKSTART_RUN_DIR: $run is not empty"; exit 1; }
else
  run="$PWD/.run"
  rm -rf "$run"
fi
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

# refuse to mix with something else on the loopback ports wanted
for port in "$relay_port" "$server_port" "$clamd_port"; do
  if node -e 'const s=require("node:net").connect(Number(process.argv[1]),"127.0.0.1");s.on("connect",()=>process.exit(0));s.on("error",()=>process.exit(1))' "$port"; then
    echo "port $port on 127.0.0.1 is already in use: stop what listens there (the quick start needs $relay_port, $server_port and $clamd_port;
      QUICKSTART_RELAY_PORT, QUICKSTART_SERVER_PORT and QUICKSTART_CLAMD_PORT choose others)"
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
TCPSocket $clamd_port
TCPAddr 127.0.0.1
DatabaseDirectory $run/clamd/db
LogFile $run/clamd/clamd.log
CONF
# the settings the relay needs (limits, and alerts for what is beyond them), as README asks of every clamd
cat config/clamd-esets-relay.conf >> "$run/clamd/clamd.conf"
clamd -c "$run/clamd/clamd.conf" > /dev/null 2>&1 & pids+=($!)

node dist/src/tools/quickstart_sink.js --port "$server_port" --dir "$run/mail" > "$run/sink.log" 2>&1 & pids+=($!)

# config/esets.cfg as it is, but for clamd's address; the relay's ports on its command line
sed "s/^daemon_sock_path = .*/daemon_sock_path = \"127.0.0.1:$clamd_port\"/" config/esets.cfg > "$run/esets.cfg"
grep -q "^daemon_sock_path = \"127.0.0.1:$clamd_port\"$" "$run/esets.cfg" || { echo "no daemon_sock_path in config/esets.cfg"; exit 1; }

wait_port "$clamd_port" || { echo "clamd did not start: see $run/clamd/clamd.log"; exit 1; }
wait_port "$server_port" || { echo "the mail server did not start: see $run/sink.log"; cat "$run/sink.log"; exit 1; }
node bin/esets_smtp.js --config "$run/esets.cfg" --listen-port "$relay_port" --server-port "$server_port" > "$run/relay.log" 2>&1 & pids+=($!)
wait_port "$relay_port" || { echo "the relay did not start: see $run/relay.log"; cat "$run/relay.log"; exit 1; }
echo "relay listening on 127.0.0.1:$relay_port -> mail server 127.0.0.1:$server_port, clamd 127.0.0.1:$clamd_port (logs in $run)"

echo; echo "== a clean message"
clean=$(swaks --server "127.0.0.1:$relay_port" --from sender@example.com --to user@example.org \
  --header "Subject: esets-relay quick start" --body "Hello through esets-relay." 2>&1 || true)
echo "$clean" | grep -E '^(<-|<\*\*) +[0-9]{3} ' | tail -2
echo; echo "== an EICAR test message"
infected=$(swaks --server "127.0.0.1:$relay_port" --from sender@example.com --to user@example.org \
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
echo; echo "The relay keeps running: try  swaks --server 127.0.0.1:$relay_port --to you@example.org  (Ctrl-C stops everything)"
wait
