"""Runs reconcile.sql on a generated data set with DuckDB; prints wall time and the counts.

Usage: duckdb_reconcile.py DIR AS_OF
"""

import pathlib
import sys
import time

import duckdb

here = pathlib.Path(__file__).parent
data, as_of = sys.argv[1], sys.argv[2]
sql = (here / "reconcile.sql").read_text().replace("{dir}", data).replace("{as_of}", as_of)
start = time.monotonic()
con = duckdb.connect()
rows = None
for statement in [s for s in sql.split(";\n") if s.strip()]:
    rows = con.execute(statement).fetchall()
elapsed = time.monotonic() - start
for pattern, n in rows:
    print(f"{pattern:<20} {n:>9}")
threads = con.execute("select current_setting('threads')").fetchone()[0]
print(f"duckdb {duckdb.__version__}: {elapsed:.2f}s wall, {threads} threads")
