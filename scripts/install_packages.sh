#!/usr/bin/env bash
# install_packages.sh PACKAGE...: installs those of the Debian packages named that are not
# installed yet (run as root, apt reachable), and nothing when all are. The scripts that build
# something (install_dependencies.sh, fuzz.sh) name what they need through it.
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
