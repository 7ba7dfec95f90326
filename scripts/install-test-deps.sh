#!/usr/bin/env bash
# Installs, on Debian, what the test suite needs besides what scripts/install-deps.sh installs (run that
# first: .ci/run does): clamdscan and clamav-testfiles, spamd (spamassassin), rsyslog and logger (the syslog
# tests), Postfix (the mail server and the queueing client of the tests; its smtp-sink/smtp-source) with
# Cyrus SASL's saslpasswd2 and PLAIN/LOGIN (sasl2-bin, libsasl2-modules: the sasldb of the Postfix the AUTH
# tests start), openssl, HAProxy (the load balancer tests), the mail readers the MIME tests open stored mail
# with (python3, munpack, ripmime), and the tools the tests build archives with (7-Zip, Info-ZIP, lzip, zstd,
# xz, bzip2, compress, gcab, lz4), and systemd for systemd-analyze (the units' verify and security score;
# installed, not run: a container keeps its own init).
# Postfix is a mail transport agent: installing it replaces any other (apt removes Exim). For a test
# machine, not a mail host.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(clamdscan clamav-testfiles spamassassin spamd postfix sasl2-bin libsasl2-modules openssl rsyslog bsdutils haproxy \
  python3 mpack ripmime 7zip zip unzip lzip zstd xz-utils bzip2 ncompress gcab lz4 systemd)
# Postfix unconfigured: the tests start private instances with their own configuration
[ "$(id -u)" = 0 ] && echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
bash scripts/apt-install.sh "${packages[@]}"

# test/e2e/package_install.test.ts installs the packed package into a Haraka folder offline; npm reads the
# registry's package documents of Haraka (the peer dependency) and of the package's own dependencies even when
# their tarballs are cached: put them in the npm cache now, while the registry is reachable
specs=$(node -e '
  const lock = require("./package-lock.json");
  const specs = [`Haraka@${lock.packages["node_modules/Haraka"].version}`];
  for (const [at, entry] of Object.entries(lock.packages)) {
    if (!at || entry.dev || entry.link) continue;
    specs.push(`${at.slice(at.lastIndexOf("node_modules/") + 13)}@${entry.version}`);
  }
  console.log(specs.join(" "));')
# shellcheck disable=SC2086 # one spec per word
npm cache add $specs --no-audit --no-fund > /dev/null
