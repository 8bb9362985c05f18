# shellcheck shell=bash
# A PostgreSQL server for the store's tests, sourced by .ci/run.
#
# ci_postgres PORT DATADIR: when nothing answers on 127.0.0.1:PORT, installs Debian's
# `postgresql` package (if its binaries are missing) and starts a cluster of its own in
# DATADIR (initdb as the postgres user, trust authentication for 127.0.0.1 only), then
# waits until it answers. A server that already answers is used as it is: it is never
# stopped, restarted or reconfigured. The cluster started here is left running, so the
# next run finds it answering.
#
# CI_POSTGRES_DRY_RUN=1 prints the apt-get commands instead of running them (so the
# install branch can be checked on a machine that must not change).

ci_pg_answers() {
    python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2).close()' \
        "$1" 2>/dev/null
}

ci_pg_bin() {  # the newest installed server's bin directory, or nothing
    local found
    found=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [ -d "$found" ]; then echo "$found"; fi
}

ci_pg_root() {  # an apt-get command, run (as root, or through sudo) or, dry, printed
    if [ "${CI_POSTGRES_DRY_RUN:-}" = 1 ]; then
        echo "ci: would run: $*"
    elif [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo -n "$@"
    fi
}

ci_pg_as_owner() {  # initdb and pg_ctl refuse to run as root: root runs them as postgres
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

ci_pg_install() {
    echo "ci: installing Debian's postgresql package"
    ci_pg_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    ci_pg_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends postgresql
}

ci_postgres() {
    local port=$1 data=$2 bin tries
    if ci_pg_answers "$port"; then
        echo "ci: PostgreSQL answers on 127.0.0.1:$port: using it"
        return 0
    fi
    bin=$(ci_pg_bin)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        ci_pg_install || { echo "ci: could not install postgresql" >&2; return 1; }
        [ "${CI_POSTGRES_DRY_RUN:-}" = 1 ] && return 0
        bin=$(ci_pg_bin)
        if ci_pg_answers "$port"; then
            # The package started its own cluster there (Debian's password authentication
            # on TCP): this run installed it a moment ago, so it is ours to stop.
            local version
            version=$(basename "$(dirname "$bin")")
            echo "ci: stopping the cluster the install started on port $port"
            ci_pg_root pg_ctlcluster "$version" main stop
        fi
    fi
    if [ ! -s "$data/PG_VERSION" ]; then
        echo "ci: creating a PostgreSQL cluster in $data (trust on 127.0.0.1:$port)"
        mkdir -p "$data"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$data"
        ci_pg_as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 \
            >"$data.initdb.log" 2>&1 || { cat "$data.initdb.log" >&2; return 1; }
    fi
    echo "ci: starting PostgreSQL ($bin) on 127.0.0.1:$port"
    ci_pg_as_owner "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$data" \
        start || { tail -n 20 "$data/server.log" >&2; return 1; }
    for tries in $(seq 1 60); do
        ci_pg_answers "$port" && return 0
        sleep 0.5
    done
    echo "ci: PostgreSQL did not answer on 127.0.0.1:$port after $tries tries" >&2
    return 1
}
