#!/usr/bin/env bash
# Install and start a local PostgreSQL for the store tests (Debian; needs root).
# Creates role keynode/keynode and database keynode_test on 127.0.0.1:5432. Idempotent.
set -euo pipefail
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
read -r version cluster _ < <(pg_lsclusters --no-header | head -n 1)
pg_ctlcluster "$version" "$cluster" start 2>/dev/null || true
for _ in $(seq 1 30); do
  su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
su postgres -c "psql -qtAc \"select 1 from pg_roles where rolname='keynode'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"create role keynode login password 'keynode' createdb\""
su postgres -c "psql -qtAc \"select 1 from pg_database where datname='keynode_test'\"" | grep -q 1 ||
  su postgres -c "createdb -O keynode keynode_test"
echo "PostgreSQL $version/$cluster ready on 127.0.0.1:5432 (database keynode_test)"
