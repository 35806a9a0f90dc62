"""A Python process building a large dict, then updating it (used by traces/record.sh).

Builds --entries entries (string key -> [int, str, float]) in 40 paced chunks, then replaces
the values of --batch random keys every 5 ms for --update-seconds. Deterministic for a given --seed (the timing
is not).
"""
import argparse
import random
import time

parser = argparse.ArgumentParser()
parser.add_argument("--entries", type=int, default=80000)
parser.add_argument("--chunks", type=int, default=40)
parser.add_argument("--pace-ms", type=float, default=40)
parser.add_argument("--update-seconds", type=float, default=1.5)
parser.add_argument("--seed", type=int, default=3)
parser.add_argument("--batch", type=int, default=2000, help="updates every 5 ms")
args = parser.parse_args()
rng = random.Random(args.seed)
table = {}
per_chunk = args.entries // args.chunks
for chunk in range(args.chunks):
    for i in range(chunk * per_chunk, (chunk + 1) * per_chunk):
        table[f"key-{i:09d}"] = [i, str(i * 7), rng.random()]
    time.sleep(args.pace_ms / 1000)
keys = list(table)
deadline = time.monotonic() + args.update_seconds
while time.monotonic() < deadline:
    for _ in range(args.batch):
        key = rng.choice(keys)
        table[key] = [rng.randrange(1 << 30), key[::-1], rng.random()]
    time.sleep(0.005)
