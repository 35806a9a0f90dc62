#!/bin/sh
# Re-records the shipped real traces (see traces/README.md for what each one is).
# Usage: traces/record.sh [redis|sqlite|python ...]   (default: all three)
# Needs: redis-server, redis-tools (redis-cli), sqlite3, python3 (Debian packages), root or ptrace access,
# and a release build of the `pagewire` tool (built here if missing).
# Environment: TRACKER=uffd (default: exact write tracking, Linux 6.7+) or diff (content
# diffing); PAGEWIRE=path of the pagewire binary; PYTHON=interpreter (default
# /usr/bin/python3, not a wrapper script: the recorded process must be the interpreter).
set -eu
cd "$(dirname "$0")/.."
OUT=traces
PYTHON=${PYTHON:-/usr/bin/python3}
PAGEWIRE=${PAGEWIRE:-target/release/pagewire}
TRACKER=${TRACKER:-uffd}
[ -x "$PAGEWIRE" ] || cargo build --release -p pagewire-bench --bin pagewire
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# With exact write tracking the recorded programs (not the load generators) are started with
# the preload library, and the recorder attaches to them once they are in steady state.
PRELOAD=
if [ "$TRACKER" = uffd ]; then
    "$PAGEWIRE" trace preload-library --output "$WORK/libpagewire_uffd_preload.so"
    PRELOAD="LD_PRELOAD=$WORK/libpagewire_uffd_preload.so"
fi

record() { # record PID SECONDS NAME
    "$PAGEWIRE" trace record --tracker "$TRACKER" --pid "$1" --interval 100ms \
        --duration "$2" --output "$OUT/$3"
}

versions() {
    uname -r
    redis-server --version
    sqlite3 --version
    "$PYTHON" --version
}

record_redis() {
    port=6391
    env $PRELOAD redis-server --port $port --save "" --appendonly no --daemonize no \
        --dir "$WORK" >"$WORK/redis.log" 2>&1 &
    server=$!
    until redis-cli -p $port ping >/dev/null 2>&1; do sleep 0.1; done
    # Load: 10000 JSON user records (about 100 to 2000 bytes each), then every 10 ms a
    # pipelined batch of 100 commands (SET of new record versions, GET, INCR, LPUSH+LTRIM,
    # LRANGE). Recording starts after 1 s of the mix.
    "$PYTHON" traces/redis_load.py --port $port --keys 10000 --batch 100 --pace-ms 10 \
        --seconds 60 --seed 5 --ready-file "$WORK/redis.ready" &
    load=$!
    until [ -e "$WORK/redis.ready" ]; do sleep 0.1; done
    sleep 1
    record $server 4s redis.trace
    kill $load; wait $load 2>/dev/null || true
    redis-cli -p $port shutdown nosave >/dev/null 2>&1 || kill $server
    wait $server 2>/dev/null || true
}

record_sqlite() {
    # A paced SQL stream: 60000 rows preloaded, then each 20 ms a transaction of 100
    # inserts and 200 updates of random rows, for 20 s (the recording takes 3 s of it).
    mkfifo "$WORK/sql"
    "$PYTHON" traces/sqlite_load.py --rows 60000 --batches 1000 --pace-ms 20 --seed 7 >"$WORK/sql" &
    load=$!
    env $PRELOAD sqlite3 "$WORK/bench.db" <"$WORK/sql" >/dev/null &
    db=$!
    sleep 3
    record $db 3s sqlite.trace
    kill $load 2>/dev/null || true
    wait $db 2>/dev/null || true
}

record_python() {
    # The dict is built in about 2 s; the recording covers the update phase that follows.
    env $PRELOAD "$PYTHON" traces/python_build.py --entries 80000 --seed 3 --batch 200 --update-seconds 8 &
    interpreter=$!
    sleep 3
    record $interpreter 3s python-dict.trace
    kill $interpreter 2>/dev/null || true
    wait $interpreter 2>/dev/null || true
}

versions
for what in ${@:-redis sqlite python}; do
    "record_$what"
done
