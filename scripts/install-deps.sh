#!/usr/bin/env bash
# Installs what the relay, its tests and the quick start need on Debian:
# clamd (clamav-daemon) and its test files, spamd (spamassassin), rsyslog and
# logger (the syslog tests),
# Postfix's smtp-sink/smtp-source, Cyrus SASL's saslpasswd2 and PLAIN/LOGIN (sasl2-bin, libsasl2-modules: the
# sasldb of the Postfix the AUTH tests start), swaks, openssl, HAProxy (the load balancer tests),
# the mail readers the MIME tests open stored mail with (python3, munpack, ripmime),
# the tools the relay opens containers with (bsdtar/bsdcat, qpdf) and those the
# tests build archives with (7-Zip, Info-ZIP, lzip, zstd, xz, compress, gcab, lz4),
# then the npm packages (from the lock file) and the TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(clamav-daemon clamdscan clamav-testfiles spamassassin spamd postfix sasl2-bin libsasl2-modules swaks openssl rsyslog bsdutils haproxy python3 mpack ripmime \
  libarchive-tools qpdf 7zip zip unzip lzip zstd xz-utils bzip2 ncompress gcab lz4)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

npm ci --no-audit --no-fund
npm run build
