#!/bin/sh
# Creates or upgrades Temporal's two PostgreSQL databases before the server starts (the password
# comes from SQL_PASSWORD). Safe on every `docker compose up`: these are the steps the
# temporalio/auto-setup image ran at each start; update-schema applies only versions not yet applied.
set -eu
tool() { temporal-sql-tool --plugin postgres12 --ep postgres -p 5432 -u temporal "$@"; }
setup() { # database, schema folder
  # An existing database is fine; any other failure stops the next step.
  tool --db "$1" create || echo "database $1 exists"
  tool --db "$1" setup-schema -v 0.0
  tool --db "$1" update-schema -d "/etc/temporal/schema/postgresql/v12/$2/versioned"
}

until nc -z postgres 5432; do echo 'waiting for PostgreSQL...'; sleep 1; done
setup temporal temporal
setup temporal_visibility visibility
echo 'Temporal schema is up to date'
