#!/usr/bin/env bash
# Installs Debian packages for the tests, non-interactively, without
# starting their services, and never hanging on an unreachable mirror:
#
#   scripts/apt-install.sh [APT-GET-INSTALL-FLAG...] PACKAGE...
#
# Used by .ci/run (podman, runc) and scripts/install-postgres.sh. Runs as
# root (CI's machines) or through sudo. Every network step has a bound
# (APT_TIMEOUT, default 600 s, for the update and again for the install),
# and a failed or timed-out step exits non-zero with a message naming the
# packages: 3 when the mirrors could not be reached (apt-get update failed or
# timed out), else apt-get install's status (or 124 for its time-out).
set -euo pipefail

(($#)) || exit 0
sudo=()
[[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
limit="${APT_TIMEOUT:-600}"
# Bounded waits: a silent mirror times out after 30 s per try (twice more),
# and a dpkg lock held by another apt is waited for, not an instant error.
opts=(-o Acquire::Retries=2 -o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30 -o DPkg::Lock::Timeout=300)

echo "apt-install: installing $* (apt-get update first)" >&2
status=0
# An index that could not be fetched is only a warning here (lists from
# the other mirrors or from before may still have the packages); with none
# at all, the install below fails with "Unable to locate package".
"${sudo[@]}" timeout "${limit}" apt-get "${opts[@]}" -qq update >&2 || status=$?
if ((status == 124)); then
	echo "apt-install: apt-get update did not finish within ${limit} s (are the Debian mirrors reachable?); cannot install $*" >&2
	exit 3
elif ((status != 0)); then
	echo "apt-install: apt-get update failed (exit ${status}): the Debian mirrors are unreachable or refused; cannot install $*" >&2
	exit 3
fi

# policy-rc.d 101: packages must not start their services (pgbouncer's
# would take port 6432). Left alone when the machine already has one.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e "${policy}" ]]; then
	printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "${policy}" >/dev/null
	"${sudo[@]}" chmod +x "${policy}"
	made_policy=1
	trap '"${sudo[@]}" rm -f "${policy}"' EXIT
fi
status=0
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive timeout "${limit}" apt-get "${opts[@]}" -y -qq \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install "$@" >&2 || status=$?
if ((status == 124)); then
	echo "apt-install: apt-get install $* did not finish within ${limit} s" >&2
	exit 124
elif ((status != 0)); then
	echo "apt-install: apt-get install $* failed (exit ${status}; if apt-get update warned that it could not fetch the indexes, the Debian mirrors are unreachable)" >&2
	exit "${status}"
fi
