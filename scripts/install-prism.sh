#!/usr/bin/env bash
# Installs Stoplight Prism (the contract checker used by pkg/emulator's contract test)
# into .cache/prism at the repository root and prints the path of its binary.
# Idempotent: when the pinned version is already there it only prints the path.
#
#   export CONVSYNC_PRISM="$(scripts/install-prism.sh)"
set -euo pipefail

PRISM_VERSION="5.16.0"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="${repo_root}/.cache/prism"
bin="${prefix}/node_modules/.bin/prism"
installed_pkg="${prefix}/node_modules/@stoplight/prism-cli/package.json"

if [[ -x "${bin}" && -f "${installed_pkg}" ]] &&
	grep -q "\"version\": \"${PRISM_VERSION}\"" "${installed_pkg}"; then
	echo "${bin}"
	exit 0
fi

command -v npm >/dev/null 2>&1 || {
	echo "install-prism.sh: npm is required (install Node.js 20 or later)" >&2
	exit 1
}

mkdir -p "${prefix}"
# npm warns that Prism declares Node >= 24; it runs on Node 20. Keep npm's chatter
# on stderr so stdout is only the binary path.
# Bounded: npm's own defaults (5 min per fetch, retried with back-off) would
# sit for many minutes on an unreachable registry before saying anything.
status=0
timeout "${NPM_TIMEOUT:-600}" npm install --prefix "${prefix}" --no-audit --no-fund --loglevel=error \
	--fetch-timeout=60000 --fetch-retries=2 \
	"@stoplight/prism-cli@${PRISM_VERSION}" >&2 || status=$?
if ((status == 124)); then
	echo "install-prism.sh: npm install did not finish within ${NPM_TIMEOUT:-600} s (is the npm registry reachable?)" >&2
	exit 1
elif ((status != 0)); then
	echo "install-prism.sh: npm install @stoplight/prism-cli@${PRISM_VERSION} failed (exit ${status})" >&2
	exit 1
fi
[[ -x "${bin}" ]] || {
	echo "install-prism.sh: npm finished but ${bin} is missing" >&2
	exit 1
}
echo "${bin}"
