#!/bin/sh
# Re-records the shipped real traces (see traces/README.md for what each one is).
# Usage: traces/record.sh [redis|sqlite|python ...]   (default: all three)
# Needs: redis-server, redis-tools, sqlite3, python3 (Debian packages), root or ptrace access,
# and a release build of the `pagewire` tool (built here if missing).
set -eu
cd "$(dirname "$0")/.."
OUT=traces
PAGEWIRE=${PAGEWIRE:-target/release/pagewire}
[ -x "$PAGEWIRE" ] || cargo build --release -p pagewire-bench --bin pagewire
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

versions() {
    uname -r
    redis-server --version
    sqlite3 --version
    python3 --version
}

record_redis() {
    port=6391
    redis-server --port $port --save "" --appendonly no --daemonize no \
        --dir "$WORK" >"$WORK/redis.log" 2>&1 &
    server=$!
    until redis-cli -p $port ping >/dev/null 2>&1; do sleep 0.1; done
    # Load: 20000 keys with 1 KiB values, then warm up under the steady-state mix.
    redis-benchmark -p $port -q -t set -n 40000 -r 20000 -d 1024 -c 8 >/dev/null
    redis-benchmark -p $port -q -l -t set,get,incr,lpush,lpop -r 20000 -d 1024 -c 8 -P 1 \
        >/dev/null 2>&1 &
    load=$!
    sleep 2
    "$PAGEWIRE" trace record --pid $server --interval 100ms --duration 4s \
        --output "$OUT/redis.pwtrace"
    kill $load; wait $load 2>/dev/null || true
    redis-cli -p $port shutdown nosave >/dev/null 2>&1 || kill $server
    wait $server 2>/dev/null || true
}

record_sqlite() {
    # A paced SQL stream: 60000 rows preloaded, then each 20 ms a transaction of 100
    # inserts and 200 updates of random rows, for 20 s (the recording takes 4 s of it).
    mkfifo "$WORK/sql"
    python3 traces/sqlite_load.py --rows 60000 --batches 1000 --pace-ms 20 --seed 7 >"$WORK/sql" &
    load=$!
    sqlite3 "$WORK/bench.db" <"$WORK/sql" >/dev/null &
    db=$!
    sleep 3
    "$PAGEWIRE" trace record --pid $db --interval 100ms --duration 4s \
        --output "$OUT/sqlite.pwtrace"
    kill $load 2>/dev/null || true
    wait $db 2>/dev/null || true
}

record_python() {
    "$PAGEWIRE" trace record --interval 100ms --duration 3s --output "$OUT/python-dict.pwtrace" \
        -- python3 traces/python_build.py --entries 400000 --seed 3
}

versions
for what in ${@:-redis sqlite python}; do
    "record_$what"
done
