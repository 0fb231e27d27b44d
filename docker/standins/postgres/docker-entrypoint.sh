#!/usr/bin/env bash
# The parts of the real postgres image's entrypoint that docker-compose.yml relies on:
# POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB (and POSTGRES_INITDB_ARGS), the
# /docker-entrypoint-initdb.d/*.sql scripts on first boot, password auth from other hosts
# and listening on every address.
set -euo pipefail

if [[ ${1:-} == -* ]]; then
    set -- postgres "$@"
fi
if [[ ${1:-} != postgres ]]; then
    exec "$@"
fi

if [[ $(id -u) == 0 ]]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}

if [[ ! -s $PGDATA/PG_VERSION ]]; then
    if [[ -z ${POSTGRES_PASSWORD:-} ]]; then
        echo "ERROR entrypoint: POSTGRES_PASSWORD is not set (the real image refuses too)" >&2
        exit 1
    fi
    echo "INFO entrypoint: initialising $PGDATA for user $user, database $db"
    # UTF8 as the real image (its LANG is en_US.utf8); the minimal root fs has only C.UTF-8.
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of flags, as in the real image
    initdb --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-}
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"

    # Initialise over the socket only, so nothing can connect over TCP half-initialised.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    if [[ $db != postgres ]]; then
        psql -v ON_ERROR_STOP=1 --username "$user" --dbname postgres \
            -c "CREATE DATABASE \"$db\""
    fi
    for script in /docker-entrypoint-initdb.d/*; do
        case $script in
            *.sql)
                echo "INFO entrypoint: running $script"
                psql -v ON_ERROR_STOP=1 --username "$user" --dbname "$db" -f "$script"
                ;;
            *'/*') ;;  # the folder is empty
            *) echo "WARNING entrypoint: ignoring $script (this stand-in runs *.sql only)" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop
    echo "INFO entrypoint: initialised; starting PostgreSQL"
fi

exec "$@"
