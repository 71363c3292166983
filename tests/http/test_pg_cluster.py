"""The PostgreSQL harness of the suites (conftest.py: pg_cluster, pg_db):
each test's schema is its own and goes afterwards, the conninfo a server
would get reaches it through libpq, and a paused cluster comes back."""
import subprocess

import pytest


def libpq_query(conninfo, sql):
    """sql through psql given conninfo as its connection string."""
    r = subprocess.run(["psql", "-X", "-tA", "-d", conninfo, "-c", sql],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


def test_schemas_are_separate_and_dropped(pg_cluster):
    a, b = pg_cluster.new_schema(), pg_cluster.new_schema()
    try:
        a.sql("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
        b.sql("CREATE TABLE t (x int)")
        assert a.sql("SELECT count(*) FROM t") == "1"
        assert b.sql("SELECT count(*) FROM t") == "0"
    finally:
        a.drop()
    assert pg_cluster.psql(f"SELECT count(*) FROM pg_namespace WHERE nspname = '{a.name}'") == "0"
    assert pg_cluster.psql(f"SELECT count(*) FROM pg_namespace WHERE nspname = '{b.name}'") == "1"
    b.drop()


def test_conninfo_reaches_the_schema(pg_db):
    rc, out, err = libpq_query(pg_db.conninfo, "SHOW search_path")
    assert rc == 0, err
    assert out == pg_db.name
    rc, out, err = libpq_query(pg_db.conninfo, "SELECT current_setting('fsync')")
    assert (rc, out) == (0, "off"), err  # the suites' cluster trades crash safety for speed


def test_pause_and_start(pg_cluster, pg_db):
    pg_cluster.pause()
    try:
        rc, _, err = libpq_query(pg_db.conninfo, "SELECT 1")
        assert rc != 0 and "No such file or directory" in err
    finally:
        pg_cluster.start()
    assert libpq_query(pg_db.conninfo, "SELECT 1")[:2] == (0, "1")
