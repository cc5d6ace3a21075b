#!/usr/bin/env bash
# Install solc-js, pinned, into the ChainDock cache and print its module
# directory on stdout, its only output there; everything else goes to stderr.
# Installs Debian's nodejs and npm packages when node or npm is missing (as
# root only). internal/chain/ethereum/templates/compile.js takes the printed
# directory.
set -euo pipefail

SOLC_VERSION=0.8.26
dir="${CHAINDOCK_CACHE:-$HOME/.cache/chaindock}/solc/$SOLC_VERSION"
module="$dir/node_modules/solc"

missing=()
command -v node >/dev/null 2>&1 || missing+=(node)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "solc.sh: missing ${missing[*]}; install Debian's nodejs and npm packages (or Node.js) and run again" >&2
    exit 1
  fi
  echo "solc.sh: ${missing[*]} missing; installing Debian's nodejs and npm packages" >&2
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm; } >&2
fi

if [ ! -f "$module/package.json" ]; then
  echo "solc.sh: installing solc@$SOLC_VERSION into $dir" >&2
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund "solc@$SOLC_VERSION" >&2
fi

echo "$module"
