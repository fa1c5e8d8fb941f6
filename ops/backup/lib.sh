# shellcheck shell=bash
# backup/lib.sh: what the ops/backup scripts share: messages, argument checks, and running
# pgBackRest as the database's owner. Sourced, never run.

# The script's name, for messages: "backup: …", "restore: …".
SCRIPT_NAME=$(basename "$0")

die() {
    echo "$SCRIPT_NAME: error: $*" >&2
    exit 1
}
say() { echo "$SCRIPT_NAME: $*" >&2; }

# Milliseconds since the epoch without a fork (EPOCHREALTIME's separator follows the locale).
now_ms() {
    local t=${EPOCHREALTIME//[.,]/}
    echo $((t / 1000))
}
# "6.1" seconds from milliseconds.
secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }

# pgBackRest must run as the user that owns the data directory (it reads and writes the cluster's
# files, and the files it restores must belong to that user). As root, the scripts switch to
# KONTOR_BACKUP_USER (default `postgres`); as anyone else they run as themselves. An array, so
# that "${AS_DB_OWNER[@]}" cmd keeps cmd's arguments intact.
if [[ $EUID -eq 0 ]]; then
    DB_OWNER=${KONTOR_BACKUP_USER:-postgres}
    getent passwd "$DB_OWNER" >/dev/null || die "no user '$DB_OWNER' to run pgBackRest as (set KONTOR_BACKUP_USER)"
    DB_OWNER_HOME=$(getent passwd "$DB_OWNER" | cut -d: -f6)
    AS_DB_OWNER=(setpriv --reuid="$DB_OWNER" --regid="$DB_OWNER" --init-groups --
        env "HOME=${DB_OWNER_HOME:-/}" "USER=$DB_OWNER" "LOGNAME=$DB_OWNER")
else
    DB_OWNER=$(id -un)
    AS_DB_OWNER=()
fi

# Options every script passes on to pgBackRest (--config FILE).
PGBR_OPTS=()

# pgbr ARGS...: runs pgBackRest as the database's owner with PGBR_OPTS, from / so that a working
# directory the owner may not enter (root's home) does not matter. PGBACKREST_* variables (the
# repository's keys and cipher passphrase) pass through.
pgbr() {
    (cd / && "${AS_DB_OWNER[@]}" pgbackrest "${PGBR_OPTS[@]}" "$@")
}

require_pgbackrest() {
    command -v pgbackrest >/dev/null 2>&1 ||
        die "pgbackrest is not installed (Debian: apt-get install -y pgbackrest)"
}

# set_config FILE: use FILE instead of pgBackRest's default /etc/pgbackrest/pgbackrest.conf.
set_config() {
    [[ -n $1 ]] || die "--config needs a file"
    local f
    f=$(realpath -m -- "$1")
    [[ -f $f ]] || die "no configuration file $f"
    PGBR_OPTS+=("--config=$f")
}

# A stanza names one cell's cluster: letters, digits, '-' and '_' (cell-de-1, control).
check_stanza() {
    [[ -n $1 ]] || die "--stanza is required (one stanza per cell, e.g. cell-de-1)"
    [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_-]*$ ]] ||
        die "'$1' is not a stanza name (letters, digits, '-' and '_')"
}
