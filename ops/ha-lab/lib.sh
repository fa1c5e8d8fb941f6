# shellcheck shell=bash disable=SC2034 # the constants are used by the scripts that source this
# ha-lab/lib.sh: what every ha-lab script shares: the ports, the lab directory, starting and
# finding the daemons by pid file, Patroni's REST API, and waiting for a healthy cluster.
# Sourced, never run. Everything listens on 127.0.0.1 only.

# Ports. The machine's own PostgreSQL keeps 5432; etcd's defaults (2379/2380) stay free too, so a
# distribution etcd can run beside the lab.
readonly LAB_HOST=127.0.0.1
readonly LAB_SCOPE=kontor-ha-lab
readonly LAB_NODES=(1 2 3)
readonly HAPROXY_PRIMARY_PORT=5440
readonly HAPROXY_REPLICA_PORT=5439
readonly HAPROXY_STATS_PORT=8404
pg_port() { echo $((5440 + $1)); }          # node1..3: 5441..5443
rest_port() { echo $((8007 + $1)); }        # node1..3: 8008..8010
etcd_client_port() { echo $((2390 + $1)); } # etcd1..3: 2391..2393
etcd_peer_port() { echo $((2490 + $1)); }   # etcd1..3: 2491..2493

# The default directory is outside root's home: /root is 0700 and PostgreSQL runs as `postgres`,
# which must reach its data directory.
readonly LAB_DEFAULT_DIR=/var/tmp/kontor-ha-lab
readonly LAB_MARKER=.kontor-ha-lab

die() {
    echo "ha-lab: error: $*" >&2
    exit 1
}
say() { echo "ha-lab: $*" >&2; }

# Milliseconds since the epoch without a fork (EPOCHREALTIME's separator follows the locale).
now_ms() {
    local t=${EPOCHREALTIME//[.,]/}
    echo $((t / 1000))
}
# ISO 8601 UTC with milliseconds for a millisecond epoch.
iso_ms() {
    local ms=$1
    date -u -d "@$((ms / 1000)).$(printf '%03d' $((ms % 1000)))" +%Y-%m-%dT%H:%M:%S.%3NZ
}
# "6.123" from milliseconds.
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

# --dir DIR is accepted by every script; KONTOR_HA_LAB_DIR sets the default.
LAB_DIR=${KONTOR_HA_LAB_DIR:-$LAB_DEFAULT_DIR}
set_lab_dir() {
    [[ -n $1 ]] || die "--dir needs a directory"
    LAB_DIR=$(realpath -m -- "$1")
    [[ $LAB_DIR != / ]] || die "--dir / is not a lab directory"
}

# As root, the daemons run as `postgres` (PostgreSQL refuses to run as root); otherwise as the
# calling user. An array, not a function, so that `"${AS_LAB[@]}" cmd &` keeps cmd's pid in $!.
if [[ $EUID -eq 0 ]]; then
    LAB_USER=postgres
    LAB_HOME=$(getent passwd postgres | cut -d: -f6 || true)
    AS_LAB=(setpriv --reuid=postgres --regid=postgres --init-groups --
        env "HOME=${LAB_HOME:-/}" USER=postgres LOGNAME=postgres)
else
    LAB_USER=$(id -un)
    AS_LAB=()
fi

# The newest PostgreSQL server installed (Debian keeps each major version in its own folder).
pg_bin() {
    if [[ -n ${KONTOR_HA_LAB_PG_BIN:-} ]]; then
        echo "$KONTOR_HA_LAB_PG_BIN"
        return
    fi
    local d
    d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)
    [[ -n $d && -x $d/postgres ]] || return 1
    echo "$d"
}

# apt-get install what is missing; the package lists are refreshed only when the install fails.
ensure_packages() {
    local missing=() cmd pkg
    for pair in patroni:patroni patronictl:patroni etcd:etcd-server etcdctl:etcd-client \
        haproxy:haproxy curl:curl jq:jq psql:postgresql-client; do
        cmd=${pair%%:*}
        pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    pg_bin >/dev/null || missing+=(postgresql)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    [[ $EUID -eq 0 ]] || die "missing packages (${missing[*]}): install them as root: apt-get install -y ${missing[*]}"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q "${missing[@]}" >&2; then
        apt-get update -q >&2 || die "apt-get update failed"
        apt-get install -y -q "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
    fi
}

# Pid files and the text each daemon's command line must contain, so that a reused pid is never
# taken for ours.
pidfile() { echo "$LAB_DIR/run/$1.pid"; }
daemon_marker() {
    case $1 in
        etcd*) echo "$LAB_DIR/etcd/$1" ;;
        node*) echo "$LAB_DIR/patroni/$1.yml" ;;
        haproxy) echo "$LAB_DIR/haproxy/haproxy.cfg" ;;
        *) die "unknown daemon $1" ;;
    esac
}
# cmdline_has PID TEXT: the process is alive and its command line contains TEXT.
cmdline_has() {
    local cmdline
    [[ -r /proc/$1/cmdline ]] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *"$2"* ]]
}
# daemon_pid NAME: prints the pid when that daemon of this lab runs.
daemon_pid() {
    local f pid
    f=$(pidfile "$1")
    [[ -r $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    cmdline_has "$pid" "$(daemon_marker "$1")" || return 1
    echo "$pid"
}
# start_daemon NAME CMD...: runs CMD as the lab user in its own session, logging to log/NAME.log.
start_daemon() {
    local name=$1 pid
    shift
    "${AS_LAB[@]}" setsid "$@" </dev/null >>"$LAB_DIR/log/$name.log" 2>&1 &
    pid=$!
    echo "$pid" >"$(pidfile "$name")"
    sleep 0.2
    daemon_pid "$name" >/dev/null || {
        tail -n 20 "$LAB_DIR/log/$name.log" >&2 || true
        die "$name did not start (log: $LAB_DIR/log/$name.log)"
    }
}
# stop_daemon NAME SIGNAL TIMEOUT_S: signals the daemon, waits for it to exit, then SIGKILLs it.
stop_daemon() {
    local name=$1 sig=$2 timeout=$3 pid deadline
    pid=$(daemon_pid "$name") || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    deadline=$(($(now_ms) + timeout * 1000))
    while (($(now_ms) < deadline)); do
        cmdline_has "$pid" "$(daemon_marker "$name")" || return 0
        sleep 0.1
    done
    say "$name (pid $pid) did not stop after ${timeout}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

# The postmaster of node N if it runs (from its postmaster.pid, checked against its data dir).
postmaster_pid() {
    local f="$LAB_DIR/node$1/data/postmaster.pid" pid
    [[ -r $f ]] || return 1
    pid=$(head -n 1 "$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    cmdline_has "$pid" "$LAB_DIR/node$1/data" || return 1
    echo "$pid"
}

port_in_use() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }

# node_index node2 → 2; also accepts 2.
node_index() {
    local n=${1#node}
    [[ $n =~ ^[1-3]$ ]] || die "no node '$1' (nodes are node1, node2, node3 or 1, 2, 3)"
    echo "$n"
}

# Patroni's REST API.
rest_get() { curl -fsS -m 2 "http://$LAB_HOST:$(rest_port "$1")$2" 2>/dev/null; }
rest_status() { curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$LAB_HOST:$(rest_port "$1")$2" 2>/dev/null || true; }
# The cluster as the first answering node sees it (GET /cluster).
cluster_json() {
    local n
    for n in "${LAB_NODES[@]}"; do
        rest_get "$n" /cluster && return 0
    done
    return 1
}
leader_name() {
    local name
    name=$(cluster_json | jq -r '[.members[] | select(.role == "leader" and .state == "running")][0].name // empty') || return 1
    [[ -n $name ]] || return 1
    echo "$name"
}

# log_event_ms LOG TEXT AFTER_MS: the time of the first Patroni or PostgreSQL log line containing
# TEXT logged at or after AFTER_MS (Patroni stamps lines in local time, with milliseconds after a
# comma; PostgreSQL's log_line_prefix '%m' adds its zone after the time).
log_event_ms() {
    local d t z ms
    while read -r d t z _; do
        [[ $z =~ ^[A-Z][A-Z0-9+-]*$ ]] || z=""
        ms=$(date -d "$d ${t/,/.} $z" +%s%3N 2>/dev/null) || continue
        if ((ms >= $3)); then
            echo "$ms"
            return 0
        fi
    done < <(grep -F -- "$2" "$1" 2>/dev/null)
    return 1
}

psql_at() {
    local port=$1
    shift
    PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-2} psql -X -q -At -v ON_ERROR_STOP=1 \
        -h "$LAB_HOST" -p "$port" -U postgres -d postgres "$@"
}

# cluster_problem MEMBERS: prints why the cluster is not yet healthy with MEMBERS members (one
# running leader, the others streaming, a synchronous standby, HAProxy's primary port writable
# and its replica port on a replica); prints nothing and succeeds when it is.
cluster_problem() {
    local want=$1 json verdict
    json=$(cluster_json) || {
        echo "no Patroni REST API answers"
        return 1
    }
    verdict=$(jq -r --argjson want "$want" '
        [.members[] | select(.role == "leader" and .state == "running")] as $leaders
        | [.members[] | select(.role != "leader" and (.state == "streaming" or .state == "running"))] as $replicas
        | if ($leaders | length) != 1 then "no running leader yet"
          elif ($replicas | length) < ($want - 1) then "\($replicas | length) of \($want - 1) replicas streaming"
          elif $want > 1 and ([.members[] | select(.role == "sync_standby")] | length) < 1 then "no synchronous standby yet"
          else "" end' <<<"$json") || verdict="unreadable /cluster answer"
    if [[ -n $verdict ]]; then
        echo "$verdict"
        return 1
    fi
    # Patroni 3.0 reports replicas as "running" whether they stream or not: ask the primary.
    local repl
    repl=$(psql_at "$HAPROXY_PRIMARY_PORT" -F ' ' -c "SELECT pg_is_in_recovery(),
        count(*) FILTER (WHERE r.state = 'streaming'), count(*) FILTER (WHERE r.sync_state = 'sync')
        FROM (SELECT 1) one LEFT JOIN pg_stat_replication r ON true GROUP BY 1" 2>/dev/null) || repl=""
    local -a r
    read -r -a r <<<"$repl"
    [[ ${r[0]:-} == f ]] || {
        echo "HAProxy primary port $HAPROXY_PRIMARY_PORT does not reach the primary yet"
        return 1
    }
    ((${r[1]:-0} >= want - 1)) || {
        echo "${r[1]:-0} of $((want - 1)) replicas streaming from the primary"
        return 1
    }
    ((want == 1 || ${r[2]:-0} >= 1)) || {
        echo "no synchronous standby connected to the primary yet"
        return 1
    }
    if ((want > 1)); then
        [[ $(psql_at "$HAPROXY_REPLICA_PORT" -c 'SELECT pg_is_in_recovery()' 2>/dev/null) == t ]] || {
            echo "HAProxy replica port $HAPROXY_REPLICA_PORT does not reach a replica yet"
            return 1
        }
    fi
}
# wait_healthy MEMBERS TIMEOUT_S
wait_healthy() {
    local want=$1 timeout=$2 start problem=""
    start=$(now_ms)
    while (($(now_ms) - start < timeout * 1000)); do
        problem=$(cluster_problem "$want") && return 0
        sleep 0.5
    done
    die "cluster not healthy after ${timeout}s: $problem (logs: $LAB_DIR/log)"
}

# The lab directory must have been made by `up`: never act on (or delete) anything else.
require_lab() {
    [[ -f $LAB_DIR/$LAB_MARKER ]] || die "no lab at $LAB_DIR (start one with: ops/ha-lab/up --dir $LAB_DIR)"
}
