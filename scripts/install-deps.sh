#!/usr/bin/env bash
# Installs what the quick start (scripts/quickstart.sh) runs, and nothing more, on Debian:
# clamd (clamav-daemon), the tools the relay opens containers with (bsdtar and bsdcat: libarchive-tools;
# qpdf: docs/containers.md), swaks (the quick start's client), then the npm packages from the lock file
# (dev dependencies included: the quick start's mail server runs on smtp-server) and the TypeScript build.
# No mail server: none of these packages is, or depends on, a mail transport agent, so an installed
# Postfix or Exim stays as it is (test/e2e/quickstart.test.ts checks this with apt-get -s).
# What the test suite needs besides: scripts/install-test-deps.sh.
#   --list   print the Debian packages, one a line, and exit
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(clamav-daemon libarchive-tools qpdf swaks)
if [ "${1:-}" = "--list" ]; then printf '%s\n' "${packages[@]}"; exit 0; fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "Node.js 20 or later is needed (found: $(node --version 2>/dev/null || echo none)): see README.md, Quick start" >&2
  exit 1
fi

bash scripts/apt-install.sh "${packages[@]}"
npm ci --no-audit --no-fund
npm run build
