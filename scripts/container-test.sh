#!/usr/bin/env bash
# Builds the container image with Podman (scripts/build-image.sh) and runs it
# as operators will: `convsync version`, then `convsync run` against the
# emulator on the host network, checking /healthz, that it runs as a
# non-root user, that the state lands in the mounted volume with mode 0600,
# that it made Twilio match the specs, and that SIGTERM stops it with exit 0.
#
# Without podman it says so and exits 0, except under CI=true, where a
# missing podman is a failure (.ci/run installs it). Needs root (the CI
# machines run as root; --network host and the runc runtime).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v podman >/dev/null; then
	if [[ "${CI:-}" == "true" ]]; then
		echo "container test: podman is not installed, and CI must build and run the image (apt-get install podman runc)" >&2
		exit 1
	fi
	echo "container test: podman is not installed; skipped (CI runs it)"
	exit 0
fi

if [[ "$(id -u)" != "0" ]]; then
	if [[ "${CI:-}" == "true" ]]; then
		echo "container test: must run as root under CI (host network, runc, a volume owned by uid 65532)" >&2
		exit 1
	fi
	echo "container test: needs root (host network, runc, a volume owned by uid 65532); skipped (CI runs it)"
	exit 0
fi

# Settings for this machine's podman, without touching /etc.
CONTAINERS_CONF="$(pwd)/deploy/container/test/containers.conf"
export CONTAINERS_CONF

work="$(mktemp -d)"
tag="localhost/convsync-test:$$"
name="convsync-test-$$"
emulator_pid=""
cleanup() {
	podman rm -f "${name}" >/dev/null 2>&1 || true
	podman rmi -f "${tag}" >/dev/null 2>&1 || true
	if [[ -n "${emulator_pid}" ]]; then
		kill "${emulator_pid}" 2>/dev/null || true
		wait "${emulator_pid}" 2>/dev/null || true
	fi
	rm -rf "${work}"
}
trap cleanup EXIT
fail() {
	echo "container test: FAIL: $*" >&2
	if podman container exists "${name}" 2>/dev/null; then
		echo "--- container logs ---" >&2
		podman logs "${name}" >&2 || true
	fi
	exit 1
}

# http_get PORT PATH prints the status line and body (bash's /dev/tcp: no
# curl needed).
http_get() {
	local fd
	exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&"${fd}"
	cat <&"${fd}"
	exec {fd}>&-
}

# wait_for DESCRIPTION COMMAND...: polls COMMAND for up to 60 s.
wait_for() {
	local what="$1"
	shift
	for _ in $(seq 300); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	fail "timed out waiting for ${what}"
}

free_port() {
	local port
	while :; do
		port=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then
			echo "${port}"
			return
		fi
	done
}

echo "container test: building the image"
scripts/build-image.sh "${tag}" container-test >"${work}/build.log" 2>&1 || {
	cat "${work}/build.log" >&2
	fail "the image does not build"
}

version="$(podman run --rm "${tag}" version)" || fail "convsync version exited $?"
[[ "${version}" == "convsync container-test "* ]] || fail "convsync version printed ${version}"
echo "container test: ${version}"
[[ "$(podman image inspect -f '{{.Config.User}}' "${tag}")" == "65532:65532" ]] || fail "the image does not run as 65532:65532"

# The emulator on the host, and a binary of this checkout to check with.
go build -o "${work}/convsync" ./cmd/convsync
account="AC22222222222222222222222222222222"
token="ContainerTestToken0123456789abc"
"${work}/convsync" emulator --listen 127.0.0.1:0 --account-sid "${account}" --auth-token "${token}" >"${work}/emulator.out" 2>"${work}/emulator.err" &
emulator_pid=$!
wait_for "the emulator" grep -q "serving Twilio Conversations v1 at" "${work}/emulator.out"
api_url="$(sed -n 's/.* at \(http[^ ]*\)$/\1/p' "${work}/emulator.out" | head -1)"

mkdir -p "${work}/specs" "${work}/secrets" "${work}/state"
cat >"${work}/specs/support.yaml" <<'EOF'
kind: Service
name: support
friendly_name: Container test ${var.env}
---
kind: Conversation
name: lobby
service: support
unique_name: lobby
friendly_name: Lobby
EOF
printf 'env: ci\n' >"${work}/specs/.env.yaml" # hidden: not read as a spec
printf %s "${token}" >"${work}/secrets/twilio-auth-token"
chmod 0444 "${work}/secrets/twilio-auth-token"
# The volume belongs to the image's user, as a named volume would.
chown 65532:65532 "${work}/state"
chmod 0700 "${work}/state"

port="$(free_port)"
podman run -d --name "${name}" --network host \
	-v "${work}/specs:/specs:ro" -v "${work}/state:/state" -v "${work}/secrets:/run/secrets:ro" \
	-e TWILIO_ACCOUNT_SID="${account}" -e TWILIO_AUTH_TOKEN_FILE=/run/secrets/twilio-auth-token \
	-e CONVSYNC_API_URL="${api_url}" \
	"${tag}" run --dir /specs --state /state/convsync.state.json --listen "127.0.0.1:${port}" \
	--log-format json --var-file /specs/.env.yaml >/dev/null || fail "podman run failed"

wait_for "/healthz" http_get "${port}" /healthz
http_get "${port}" /healthz | grep -Eq '"status": *"alive"' || fail "/healthz: $(http_get "${port}" /healthz)"
# The first pass is done once GET /plan has a plan.
plan_ready() { http_get "${port}" /plan | head -1 | grep -q ' 200 '; }
wait_for "the first pass (GET /plan 200)" plan_ready
echo "container test: /healthz alive, first pass done"

pid="$(podman inspect -f '{{.State.Pid}}' "${name}")"
uid="$(awk '/^Uid:/{print $2}' "/proc/${pid}/status")"
[[ "${uid}" == "65532" ]] || fail "the daemon runs as uid ${uid}, not 65532"

statefile="${work}/state/convsync.state.json"
[[ -f "${statefile}" ]] || fail "no state file in the mounted volume"
[[ "$(stat -c '%a %u' "${statefile}")" == "600 65532" ]] || fail "the state file is $(stat -c '%a %u' "${statefile}"), want mode 600, owner 65532"
echo "container test: runs as uid ${uid}; state in the volume, mode 0600"

podman kill --signal TERM "${name}" >/dev/null
code="$(podman wait "${name}")"
[[ "${code}" == "0" ]] || fail "SIGTERM: exit ${code}, want 0"
echo "container test: SIGTERM -> exit 0"

# What the daemon applied is what the specs say: a plan from its state
# has nothing to do.
TWILIO_ACCOUNT_SID="${account}" TWILIO_AUTH_TOKEN="${token}" CONVSYNC_API_URL="${api_url}" \
	"${work}/convsync" plan --dir "${work}/specs" --state "${statefile}" --var env=ci --detailed-exitcode >"${work}/plan.out" 2>&1 ||
	{
		cat "${work}/plan.out" >&2
		fail "the specs and Twilio differ after the daemon's pass"
	}
echo "container test: passed"
