"""A load generator for redis-server with varied, realistic values (used by traces/record.sh).

Speaks RESP over a TCP socket (standard library only). First stores --keys user records
(JSON objects with numbers and text of varying length, about 100 to 2000 bytes), then runs a
paced mix for --seconds (creating --ready-file, if given, when it starts): every --pace-ms milliseconds one pipelined batch of --batch
commands drawn from SET of a new version of a record (some fields changed, the text
sometimes rewritten), GET, INCR of counters, LPUSH to per-user event lists (kept short with
LTRIM) and LRANGE. Deterministic for a given --seed (the timing is not).
"""
import argparse
import json
import random
import socket
import time

parser = argparse.ArgumentParser()
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=6379)
parser.add_argument("--keys", type=int, default=10000)
parser.add_argument("--seconds", type=float, default=20)
parser.add_argument("--batch", type=int, default=100, help="commands per pipelined batch")
parser.add_argument("--pace-ms", type=float, default=10)
parser.add_argument("--seed", type=int, default=5)
parser.add_argument("--ready-file", help="created once the records are stored")
args = parser.parse_args()
rng = random.Random(args.seed)

WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there been one all we their has would when if "
    "so no will more can said about out what up some them into than its only time could new "
    "these two may first then do any like my now over such our man me even most made after "
    "also did many before must through back years where much your way down should because "
    "each just those people how too little state good very make world still own see men work "
    "long get here between both life being under never day same another know while last might "
    "us great old year off come since against go came right used take three order invoice "
    "delivery account payment warehouse shipment customer support ticket review rating"
).split()
CITIES = ["Lisbon", "Oslo", "Kyoto", "Austin", "Lagos", "Lima", "Perth", "Quebec", "Turin"]
STATUSES = ["active", "suspended", "trial", "closed", "pending"]


def text(words):
    return " ".join(rng.choices(WORDS, k=words)).capitalize() + "."


def record(uid, version):
    """A user record; the bio's length varies widely (log-uniform), like real documents."""
    return {
        "id": uid,
        "version": version,
        "name": f"{rng.choice(WORDS).capitalize()} {rng.choice(WORDS).capitalize()}",
        "email": f"user{uid}@{rng.choice(WORDS)}.example",
        "city": rng.choice(CITIES),
        "status": rng.choice(STATUSES),
        "balance": round(rng.uniform(-500, 50000), 2),
        "logins": rng.randrange(100000),
        "tags": rng.sample(WORDS, rng.randint(0, 6)),
        "updated": 1700000000 + rng.randrange(10**7),
        "bio": text(int(2 ** rng.uniform(3, 8.5))),
    }


def updated(doc):
    """A new version of a record: a few fields change, the text now and then."""
    doc["version"] += 1
    doc["balance"] = round(doc["balance"] + rng.uniform(-100, 100), 2)
    doc["logins"] += 1
    doc["updated"] += rng.randrange(1, 100000)
    if rng.random() < 0.3:
        doc["status"] = rng.choice(STATUSES)
    if rng.random() < 0.2:
        doc["bio"] = text(int(2 ** rng.uniform(3, 8.5)))
    return doc


def command(*parts):
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Connection:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def pipeline(self, commands):
        """Sends the commands at once and reads one reply per command."""
        self.sock.sendall(b"".join(commands))
        for _ in commands:
            self.reply()

    def reply(self):
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed by the server")
        kind, rest = line[:1], line[1:-2]
        if kind == b"-":
            raise RuntimeError(f"redis error: {rest.decode()}")
        if kind == b"$":
            length = int(rest)
            if length >= 0:
                self.reader.read(length + 2)
        elif kind == b"*":
            for _ in range(max(int(rest), 0)):
                self.reply()
        elif kind not in (b"+", b":"):
            raise RuntimeError(f"unexpected reply {line!r}")


def key(uid):
    return f"user:{uid:06d}"


def main():
    conn = Connection(args.host, args.port)
    docs = {}
    batch = []
    for uid in range(args.keys):
        docs[uid] = record(uid, 1)
        batch.append(command("SET", key(uid), json.dumps(docs[uid])))
        if len(batch) == 200:
            conn.pipeline(batch)
            batch = []
    if batch:
        conn.pipeline(batch)
    if args.ready_file:
        open(args.ready_file, "w").close()
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        batch = []
        for _ in range(args.batch):
            uid = rng.randrange(args.keys)
            roll = rng.random()
            if roll < 0.40:
                batch.append(command("SET", key(uid), json.dumps(updated(docs[uid]))))
            elif roll < 0.65:
                batch.append(command("GET", key(uid)))
            elif roll < 0.78:
                batch.append(command("INCR", f"visits:{uid % 2000:04d}"))
            elif roll < 0.90:
                event = f"{int(time.time() * 1000)} {rng.choice(WORDS)} {rng.randrange(10**6)}"
                batch.append(command("LPUSH", f"events:{uid % 1000:04d}", event))
                batch.append(command("LTRIM", f"events:{uid % 1000:04d}", 0, 49))
            else:
                batch.append(command("LRANGE", f"events:{uid % 1000:04d}", 0, 9))
        conn.pipeline(batch)
        time.sleep(args.pace_ms / 1000)


main()
