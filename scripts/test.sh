#!/usr/bin/env bash
# The project's test command: the README gives it, and .ci/run calls it.
# Needs Go and Node/npm (for Prism, the contract checker, installed on first run
# into .cache/prism). Checks formatting and vet, then runs every test with the
# race detector, including the end-to-end tests of the real binary against the
# emulator and the contract check through Prism.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# A build output (the binary, caches) must never be tracked: a fresh clone
# would ship a stale binary. .gitignore lists them; git knows which tracked
# files it ignores.
if git rev-parse --git-dir >/dev/null 2>&1; then
	tracked_outputs="$(git ls-files -ci --exclude-standard)"
	if [[ -n "${tracked_outputs}" ]]; then
		echo "build outputs are tracked in git (remove them with git rm --cached):" >&2
		echo "${tracked_outputs}" >&2
		exit 1
	fi
fi

unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*'))"
if [[ -n "${unformatted}" ]]; then
	echo "gofmt would change these files:" >&2
	echo "${unformatted}" >&2
	exit 1
fi
go vet ./...

CONVSYNC_PRISM="${CONVSYNC_PRISM:-$(scripts/install-prism.sh)}"
export CONVSYNC_PRISM

# The PostgreSQL state backend's tests start their own servers from the
# installed binaries and PgBouncer (scripts/install-postgres.sh installs
# them; .ci/run calls it). A pgbouncer it had to unpack into .cache says
# where it is in .cache/pgbouncer/env.
if [[ -f .cache/pgbouncer/env ]]; then
	# shellcheck disable=SC1091
	source .cache/pgbouncer/env
fi
if [[ "${CI:-}" != "true" ]]; then
	# Outside CI those tests skip without them: say so where it shows.
	compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || [[ -n "${CONVSYNC_PG_BINDIR:-}" ]] ||
		echo "test.sh: no PostgreSQL server binaries: the PostgreSQL tests will be skipped (scripts/install-postgres.sh installs them)" >&2
	command -v pgbouncer >/dev/null || [[ -x /usr/sbin/pgbouncer ]] || [[ -n "${CONVSYNC_PGBOUNCER:-}" ]] ||
		echo "test.sh: no pgbouncer: the PgBouncer tests will be skipped (scripts/install-postgres.sh installs it)" >&2
fi

go test -race -count=1 -timeout 15m ./... "$@"

# Fuzz the parsers of hostile input briefly; the seed corpora run above as
# ordinary tests. Set FUZZTIME (e.g. 2m) for a longer search.
for target in FuzzParse FuzzParseISODuration FuzzCanonicalJSON FuzzFormat; do
	go test -run '^$' -fuzz "^${target}\$" -fuzztime "${FUZZTIME:-5s}" ./pkg/spec
done

# The container image, built and run with Podman (fails under CI=true when
# Podman is missing; skipped elsewhere).
./scripts/container-test.sh
