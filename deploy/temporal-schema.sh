#!/bin/sh
# Creates or upgrades Temporal's two PostgreSQL databases before the server starts (the password
# comes from SQL_PASSWORD). Safe on every start: these are the steps the temporalio/auto-setup
# image ran at each start; update-schema applies only versions not yet applied. The schemas are the
# ones built into temporal-sql-tool (--schema-name), so the tool's version is the schema's.
# Run by compose's temporal-schema job and by deploy/native/cluster.sh (POSTGRES_SEEDS, DB_PORT).
set -eu
host="${POSTGRES_SEEDS:-postgres}"
port="${DB_PORT:-5432}"
tool() { temporal-sql-tool --plugin postgres12 --ep "$host" -p "$port" -u temporal "$@"; }
setup() { # database, schema name
  # An existing database is fine; any other failure stops the next step.
  tool --db "$1" create || echo "database $1 exists"
  tool --db "$1" setup-schema -v 0.0
  tool --db "$1" update-schema --schema-name "postgresql/v12/$2"
}

# The native deployment waits with pg_isready before; nc is in the admin-tools image.
if command -v nc >/dev/null; then
  until nc -z "$host" "$port"; do echo 'waiting for PostgreSQL...'; sleep 1; done
fi
setup temporal temporal
setup temporal_visibility visibility
echo 'Temporal schema is up to date'
