"""Writes a paced SQL workload for the sqlite3 shell to stdout (used by traces/record.sh).

Creates a table with an index, preloads --rows rows, then every --pace-ms milliseconds runs
one transaction of --inserts inserts and --updates updates of random existing rows, for
--batches transactions. Deterministic for a given --seed (the timing is not).
"""
import argparse
import random
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--rows", type=int, default=60000)
parser.add_argument("--batches", type=int, default=1000)
parser.add_argument("--inserts", type=int, default=100)
parser.add_argument("--updates", type=int, default=200)
parser.add_argument("--pace-ms", type=float, default=20)
parser.add_argument("--seed", type=int, default=7)
args = parser.parse_args()
rng = random.Random(args.seed)
out = sys.stdout
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]


def row(i):
    name = f"{rng.choice(WORDS)}-{i:08d}"
    note = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
    return f"INSERT INTO items VALUES({i}, '{name}', {rng.randint(0, 1000)}, {rng.random() * 100:.2f}, '{note}');"


# 128 MiB page cache: the whole database stays in the process's memory.
out.write("PRAGMA cache_size=-131072;\nPRAGMA synchronous=OFF;\n")
out.write("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL, note TEXT);\n")
out.write("CREATE INDEX items_name ON items(name);\n")
next_id = 0
while next_id < args.rows:
    out.write("BEGIN;\n")
    for _ in range(1000):
        out.write(row(next_id) + "\n")
        next_id += 1
    out.write("COMMIT;\n")
out.flush()
for _ in range(args.batches):
    out.write("BEGIN;\n")
    for _ in range(args.inserts):
        out.write(row(next_id) + "\n")
        next_id += 1
    for _ in range(args.updates):
        target = rng.randrange(next_id)
        out.write(
            f"UPDATE items SET qty = qty + 1, note = '{rng.choice(WORDS)} {target}' WHERE id = {target};\n"
        )
    out.write("COMMIT;\n")
    out.flush()
    time.sleep(args.pace_ms / 1000)
