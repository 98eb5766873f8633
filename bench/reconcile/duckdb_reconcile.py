"""Runs reconcile.sql on a generated data set with DuckDB; prints wall time and the counts.

Usage: duckdb_reconcile.py DIR AS_OF TIMEZONE DEADLINE_HOURS [--profile]
With --profile, each statement's time is printed, and the slowest one's plan with its
operators' timings (EXPLAIN ANALYZE).
"""

import pathlib
import sys
import time

import duckdb

here = pathlib.Path(__file__).parent
data, as_of, timezone, hours = sys.argv[1:5]
profile = "--profile" in sys.argv[5:]
sql = (
    (here / "reconcile.sql")
    .read_text()
    .replace("{dir}", data)
    .replace("{as_of}", as_of)
    .replace("{timezone}", timezone)
    .replace("{deadline_hours}", hours)
)
start = time.monotonic()
con = duckdb.connect()
rows = None
timings = []
for statement in [s for s in sql.split(";\n") if s.strip()]:
    t = time.monotonic()
    rows = con.execute(statement).fetchall()
    timings.append((time.monotonic() - t, statement))
elapsed = time.monotonic() - start
for pattern, n in rows:
    print(f"{pattern:<20} {n:>9}")
threads = con.execute("select current_setting('threads')").fetchone()[0]
print(f"duckdb {duckdb.__version__}: {elapsed:.2f}s wall, {threads} threads")
if profile:
    for seconds, statement in sorted(timings, reverse=True):
        head = " ".join(l for l in statement.splitlines() if not l.startswith("--"))[:90]
        print(f"{seconds:7.2f}s  {head}")
