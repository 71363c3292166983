#!/usr/bin/env bash
# pg-cluster.sh — a throwaway PostgreSQL cluster for crmblob's tests.
#
#   pg-cluster.sh start [--fast] DIR   initdb (when DIR holds no cluster yet) and start it
#   pg-cluster.sh pause DIR [MODE]     stop the server, keep its data (tests of an absent server);
#                                      MODE fast (default) or immediate (as a crash: recovery at start)
#   pg-cluster.sh restart DIR MODE     pg_ctl restart -m MODE (fast, immediate): the same settings
#   pg-cluster.sh stop DIR             stop the server and remove DIR
#   pg-cluster.sh env DIR              print the PG* variables that reach it (for eval)
#   pg-cluster.sh with [--fast] DIR CMD...  start, run CMD with those variables, stop
#
# The server listens on a Unix socket in DIR only (listen_addresses = ''),
# so that clusters of parallel test runs never meet and nothing outside this
# machine can reach one; the socket's name carries PGPORT (5432 unless
# PG_CLUSTER_PORT says otherwise, a name and not a bound port). Local
# connections are trusted (auth trust): the superuser is the caller's user
# name, and the database crmblob_test is made at the first start. When run
# as root, initdb and the server run as the `postgres` system user (the
# server refuses root), and DIR is handed to that user.
#
# Settings are those of a small test cluster (16 MB shared_buffers, no
# autovacuum delay worth waiting for). --fast turns off fsync and
# full_page_writes: a killed server still loses nothing (its writes are in
# the kernel's page cache), only a crash of the machine would. The unit and
# black-box suites use --fast; benchmarks and anything that measures
# commits, or would survive a power cut, must start without it.
set -euo pipefail

PORT=${PG_CLUSTER_PORT:-5432}
DBNAME=crmblob_test
MARK=.crmblob-pg-cluster

die() { echo "pg-cluster: $*" >&2; exit 1; }

# The directory of PostgreSQL's server programs (Debian keeps them out of PATH).
pg_bindir() {
    local d
    if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return
    fi
    for d in $(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V -r); do
        [ -x "$d/initdb" ] && { echo "$d"; return; }
    done
    die "no PostgreSQL server programs (initdb) found: install the Debian package postgresql"
}

# Runs a server program as the cluster's owner. As root, from /: the
# caller's directory (a clone under /root) may be closed to postgres, and
# every program would complain that it cannot change into it.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && exec "$(command -v runuser || echo /usr/sbin/runuser)" -u postgres -- "$@")
    else
        "$@"
    fi
}

superuser() { id -un; }

print_env() {
    echo "export PGHOST=$1 PGPORT=$PORT PGUSER=$(superuser) PGDATABASE=$DBNAME"
}

# Makes DIR the home of a new cluster, owned by the server's user.
init_cluster() {
    local dir=$1 bin=$2
    mkdir -p "$dir"
    touch "$dir/$MARK"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || die "no system user postgres (installed by the package postgresql)"
        chown postgres: "$dir"
        chmod 0700 "$dir"
        as_owner test -x "$dir" || die "$dir: the user postgres cannot reach it (a parent directory is closed)"
    fi
    as_owner "$bin/initdb" -D "$dir/data" -U "$(superuser)" --auth=trust -E UTF8 \
        --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; die "initdb failed"; }
}

# The settings of every start; $2 = "fast" turns fsync off.
server_opts() {
    local dir=$1 fast=$2
    local o="-c listen_addresses= -c unix_socket_directories=$dir -p $PORT"
    o+=" -c shared_buffers=16MB -c max_connections=200 -c max_wal_size=256MB"
    o+=" -c logging_collector=off -c log_min_messages=warning"
    [ "$fast" = fast ] && o+=" -c fsync=off -c full_page_writes=off"
    echo "$o"
}

cmd_start() {
    local fast=""
    [ "${1:-}" = --fast ] && { fast=fast; shift; }
    [ $# -eq 1 ] || die "usage: start [--fast] DIR"
    local dir bin
    dir=$(realpath -m "$1")
    bin=$(pg_bindir)
    if [ -d "$dir" ] && [ ! -f "$dir/$MARK" ] && [ -n "$(ls -A "$dir")" ]; then
        die "$dir holds files and no cluster of pg-cluster.sh: not taking it"
    fi
    [ -d "$dir/data" ] || init_cluster "$dir" "$bin"
    [ -f "$dir/$MARK" ] || die "$dir was not made by pg-cluster.sh"
    if as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        print_env "$dir" # already running (with the settings it was started with)
        return
    fi
    echo "$fast" >"$dir/$MARK"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "$(server_opts "$dir" "$fast")" start >/dev/null ||
        { tail -n 20 "$dir/server.log" >&2; die "the server did not start (log: $dir/server.log)"; }
    as_owner "$bin/psql" -X -q -h "$dir" -p "$PORT" -U "$(superuser)" -d postgres \
        -tAc "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'" | grep -q 1 ||
        as_owner "$bin/createdb" -h "$dir" -p "$PORT" -U "$(superuser)" "$DBNAME"
    print_env "$dir"
}

# The stop or restart mode $1 (fast, immediate), or a usage error $2.
stop_mode() {
    case "$1" in fast | immediate) echo "$1" ;; *) die "$2" ;; esac
}

cmd_pause() {
    [ $# -eq 1 ] || [ $# -eq 2 ] || die "usage: pause DIR [fast|immediate]"
    local dir mode
    dir=$(realpath -m "$1")
    mode=$(stop_mode "${2:-fast}" "usage: pause DIR [fast|immediate]")
    [ -f "$dir/$MARK" ] || die "$dir was not made by pg-cluster.sh"
    as_owner "$(pg_bindir)/pg_ctl" -D "$dir/data" -m "$mode" -w stop >/dev/null
}

# pg_ctl restart keeps the options of the last start (postmaster.opts).
cmd_restart() {
    [ $# -eq 2 ] || die "usage: restart DIR fast|immediate"
    local dir mode
    dir=$(realpath -m "$1")
    mode=$(stop_mode "$2" "usage: restart DIR fast|immediate")
    [ -f "$dir/$MARK" ] || die "$dir was not made by pg-cluster.sh"
    as_owner "$(pg_bindir)/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m "$mode" -w -t 60 \
        restart >/dev/null || { tail -n 20 "$dir/server.log" >&2; die "the server did not restart"; }
}

cmd_stop() {
    [ $# -eq 1 ] || die "usage: stop DIR"
    local dir
    dir=$(realpath -m "$1")
    [ -d "$dir" ] || return 0
    [ -f "$dir/$MARK" ] || die "$dir was not made by pg-cluster.sh: not removing it"
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$(pg_bindir)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || true
    fi
    rm -rf "$dir"
}

cmd_env() {
    [ $# -eq 1 ] || die "usage: env DIR"
    print_env "$(realpath -m "$1")"
}

cmd_with() {
    local fast=()
    [ "${1:-}" = --fast ] && { fast=(--fast); shift; }
    [ $# -ge 2 ] || die "usage: with [--fast] DIR CMD..."
    WITH_DIR=$(realpath -m "$1")
    shift
    cmd_stop "$WITH_DIR"
    trap 'cmd_stop "$WITH_DIR"' EXIT
    eval "$(cmd_start "${fast[@]}" "$WITH_DIR")"
    export PG_CLUSTER_DIR=$WITH_DIR
    "$@"
}

[ $# -ge 1 ] || die "usage: start|pause|stop|env|with ... (see the head of $0)"
verb=$1
shift
case "$verb" in
start) cmd_start "$@" ;;
pause) cmd_pause "$@" ;;
restart) cmd_restart "$@" ;;
stop) cmd_stop "$@" ;;
env) cmd_env "$@" ;;
with) cmd_with "$@" ;;
*) die "unknown command $verb" ;;
esac
