"""The fault campaign: the real service under a mixed load while its processes and servers fail,
one fault after another, with the books checked in the database after each (docs/faults.md).

    .venv/bin/python -m bench.faults [--short] [--only NAME,...] [--recovery-bound SECONDS] ...

servers: the campaign's own MariaDB and Redis; rig: them, the schema, the catalog, the keys and the
service's processes (bench/stack.py); traffic: the clients and what they saw; catalogue: the faults;
campaign: one fault's run and its recovery check; checks: the SQL; report: the table and the JSON.
"""
