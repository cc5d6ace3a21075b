#!/usr/bin/env bash
# Start a ChainDock server in the foreground and deploy a network into it.
# Nodes keep running after the server stops; `bin/chaindock delete network NAME`
# removes them.
set -euo pipefail
spec=${1:?usage: run.sh NETWORK.yaml}
data_dir=${DATA_DIR:-$HOME/.chaindock}
bin=$(cd "$(dirname "$0")/.." && pwd)/bin

"$bin/chaindock" server --data-dir "$data_dir" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' INT TERM EXIT

for _ in $(seq 100); do
  if [ -s "$data_dir/server.addr" ] && "$bin/chaindock" --data-dir "$data_dir" get networks >/dev/null 2>&1; then break; fi
  kill -0 $server 2>/dev/null || { echo "the server exited; see its log above" >&2; exit 1; }
  sleep 0.1
done
"$bin/chaindock" --data-dir "$data_dir" apply -f "$spec" --wait
echo
"$bin/chaindock" --data-dir "$data_dir" get networks
echo
echo "The server runs until Ctrl-C (nodes keep running after it; delete a network with"
echo "  $bin/chaindock --data-dir $data_dir delete network NAME --wait)"
wait $server
