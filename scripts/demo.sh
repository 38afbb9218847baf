#!/usr/bin/env bash
# Runs convsync's main job against its built-in emulator, no Twilio account
# needed: starts `convsync emulator` on a free loopback port, then plans and
# applies a spec folder (default examples/support-desk), shows that a second
# plan finds nothing to do, and lists the state. Usage:
#   scripts/demo.sh [SPEC_DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
specs="${1:-examples/support-desk}"

mkdir -p .cache/bin
go build -o .cache/bin/convsync ./cmd/convsync
convsync=.cache/bin/convsync

work="$(mktemp -d)"
"${convsync}" emulator --listen 127.0.0.1:0 >"${work}/emulator.out" 2>"${work}/emulator.err" &
emulator_pid=$!
trap 'kill "${emulator_pid}" 2>/dev/null || true; rm -rf "${work}"' EXIT

# Wait for the emulator to print its URL (it does so once it is listening).
for _ in $(seq 1 100); do
	grep -q '^convsync emulator serving' "${work}/emulator.out" 2>/dev/null && break
	kill -0 "${emulator_pid}" 2>/dev/null || { cat "${work}/emulator.err" >&2; exit 1; }
	sleep 0.1
done
cat "${work}/emulator.out"
# The emulator prints the exports to use; take them.
eval "$(grep '^  export ' "${work}/emulator.out")"

run() {
	echo
	echo "\$ convsync $*"
	"${convsync}" "$@" --dir "${specs}" --state "${work}/convsync.state.json"
}
run plan
run apply --auto-approve
run plan --detailed-exitcode
echo
echo "\$ convsync state list"
"${convsync}" state list --state "${work}/convsync.state.json"
