#!/usr/bin/env bash
# Makes sure the PostgreSQL 15 server binaries and pgbouncer are installed
# (Debian packages postgresql-15 and pgbouncer), for the tests of the
# PostgreSQL state backend. The packages' own services are not started.
# Where dpkg cannot install (a broken package database), pgbouncer is
# unpacked into .cache/pgbouncer instead, and .cache/pgbouncer/env says
# where (CONVSYNC_PGBOUNCER, CONVSYNC_PGBOUNCER_LIBRARY_PATH).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql-15)
command -v pgbouncer >/dev/null || [[ -x /usr/sbin/pgbouncer ]] || [[ -f .cache/pgbouncer/env ]] || need+=(pgbouncer)
((${#need[@]})) || exit 0

echo "installing ${need[*]} for the PostgreSQL tests" >&2
status=0
scripts/apt-install.sh --no-install-recommends "${need[@]}" || status=$?
if ((status == 0)); then
	exit 0
fi
if ((status == 3)); then
	exit 1 # the mirrors are unreachable: apt-install.sh said so
fi
for pkg in "${need[@]}"; do
	if [[ "${pkg}" != pgbouncer ]]; then
		echo "apt-get install ${pkg} failed" >&2
		exit 1
	fi
done
echo "apt-get install pgbouncer failed; unpacking it into .cache/pgbouncer instead" >&2
mkdir -p .cache/pgbouncer/debs
(cd .cache/pgbouncer/debs && apt-get download pgbouncer libc-ares2 >&2)
for deb in .cache/pgbouncer/debs/*.deb; do
	dpkg-deb -x "${deb}" .cache/pgbouncer/root
done
root="$(pwd)/.cache/pgbouncer/root"
cat >.cache/pgbouncer/env <<ENV
export CONVSYNC_PGBOUNCER=${root}/usr/sbin/pgbouncer
export CONVSYNC_PGBOUNCER_LIBRARY_PATH=${root}/usr/lib/x86_64-linux-gnu
ENV
