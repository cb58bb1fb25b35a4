#!/usr/bin/env bash
# Installs the Debian packages the tests need, once: every line of tools/system-packages.d/*.txt
# names a command and the packages that provide it; the packages are installed (one apt-get
# run for all) when the command is missing. As root, or through sudo.
set -euo pipefail
cd "$(dirname "$0")/system-packages.d"
missing=()
while read -r command packages; do
  [[ -z "$command" || "$command" == \#* ]] && continue
  command -v "$command" >/dev/null 2>&1 || [[ -e "$command" ]] || missing+=($packages)
done < <(cat ./*.txt)
((${#missing[@]})) || exit 0
sudo=""; [[ "$(id -u)" == 0 ]] || sudo=sudo
echo "installing with apt-get: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
