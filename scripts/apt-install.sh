#!/usr/bin/env bash
# apt-install.sh PACKAGE...: installs, without recommended packages, those of the given Debian packages that
# are not installed yet (apt-get, as root); does nothing when all are there. Used by install-deps.sh and
# install-test-deps.sh.
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${missing[*]}: run this as root, or install them (apt-get install --no-install-recommends ...)" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
