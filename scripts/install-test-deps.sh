#!/usr/bin/env bash
# Installs, on Debian, what the test suite needs besides what scripts/install-deps.sh installs (run that
# first: .ci/run does): clamdscan and clamav-testfiles, spamd (spamassassin), rsyslog and logger (the syslog
# tests), Postfix (the mail server and the queueing client of the tests; its smtp-sink/smtp-source) with
# Cyrus SASL's saslpasswd2 and PLAIN/LOGIN (sasl2-bin, libsasl2-modules: the sasldb of the Postfix the AUTH
# tests start), openssl, HAProxy (the load balancer tests), the mail readers the MIME tests open stored mail
# with (python3, munpack, ripmime), and the tools the tests build archives with (7-Zip, Info-ZIP, lzip, zstd,
# xz, bzip2, compress, gcab, lz4).
# Postfix is a mail transport agent: installing it replaces any other (apt removes Exim). For a test
# machine, not a mail host.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(clamdscan clamav-testfiles spamassassin spamd postfix sasl2-bin libsasl2-modules openssl rsyslog bsdutils haproxy \
  python3 mpack ripmime 7zip zip unzip lzip zstd xz-utils bzip2 ncompress gcab lz4)
# Postfix unconfigured: the tests start private instances with their own configuration
[ "$(id -u)" = 0 ] && echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
bash scripts/apt-install.sh "${packages[@]}"
