"""An unmodified Python host (Debian's python3 and its sqlite3 module) loading
libdnr.so: tenants are isolated, cross-tenant writes change nothing, and an
app upgrade runs its schema change through dnr_migrate.

Run by scripts/sqlite-test.sh: python -m unittest discover -s tests/python
(DNR_LIB names the library without its .so suffix).
"""

import os
import sqlite3
import tempfile
import unittest

from fixtures import ACME, ALICE, BOB, GLOBEX, POLICY, connect




def titles(conn):
    return [row[0] for row in conn.execute("SELECT title FROM tasks ORDER BY id")]


class LoadInPython(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "app.db")
        conn = connect(self.path)
        conn.execute("SELECT dnr_apply(?)", (POLICY,))
        conn.execute("SELECT dnr_set_context(?, ?, NULL, 0)", (ACME, ALICE))
        conn.execute("INSERT INTO tasks (id, owner_id, title) VALUES (1, ?, 'acme 1')", (ALICE,))
        conn.execute("SELECT dnr_set_context(?, ?, NULL, 0)", (GLOBEX, BOB))
        conn.execute("INSERT INTO tasks (id, owner_id, title) VALUES (2, ?, 'globex 1')", (BOB,))
        conn.close()

    def tearDown(self):
        self.dir.cleanup()

    def test_tenants_are_isolated_across_connections(self):
        conn = connect(self.path)
        conn.execute("SELECT dnr_set_context(?, ?, NULL, 0)", (ACME, ALICE))
        self.assertEqual(titles(conn), ["acme 1"])
        conn.execute("SELECT dnr_set_context(?, ?, NULL, 0)", (GLOBEX, BOB))
        self.assertEqual(titles(conn), ["globex 1"])
        conn.execute("SELECT dnr_clear_context()")
        self.assertEqual(titles(conn), [])

    def test_a_context_set_in_sql_lasts_for_its_transaction(self):
        # As in PostgreSQL: request 2 on a reused connection that sets no
        # context sees nothing of request 1's tenant.
        conn = connect(self.path)
        conn.execute("BEGIN")
        conn.execute("SELECT dnr_set_context(?, ?)", (ACME, ALICE))
        self.assertEqual(titles(conn), ["acme 1"])
        conn.execute("COMMIT")
        self.assertEqual(conn.execute("SELECT dnr_tenant(), dnr_user()").fetchone(), (None, None))
        self.assertEqual(titles(conn), [])
        # Outside a transaction the setter's own statement is the transaction.
        conn.execute("SELECT dnr_set_context(?, ?)", (ACME, ALICE))
        self.assertEqual(titles(conn), [])
        # A rollback ends it too; the session form (local = 0) stays.
        conn.execute("SELECT dnr_set_context(?, ?, NULL, 0)", (GLOBEX, BOB))
        conn.execute("BEGIN")
        conn.execute("SELECT dnr_set_context(?, ?)", (ACME, ALICE))
        self.assertEqual(titles(conn), ["acme 1"])
        conn.execute("ROLLBACK")
        self.assertEqual(titles(conn), ["globex 1"])

    def test_cross_tenant_writes_change_nothing(self):
        conn = connect(self.path)
        conn.execute("SELECT dnr_set_context(?, ?, NULL, 0)", (ACME, ALICE))
        conn.execute("UPDATE tasks SET title = 'hijacked' WHERE id = 2")
        conn.execute("DELETE FROM tasks WHERE id = 2")
        with self.assertRaisesRegex(sqlite3.DatabaseError, "refused by the tenant fence"):
            conn.execute(
                "INSERT INTO tasks (id, tenant_id, owner_id, title) VALUES (3, ?, ?, 'forged')",
                (GLOBEX, ALICE),
            )
        conn.execute("SELECT dnr_set_context(?, ?, NULL, 0)", (GLOBEX, BOB))
        self.assertEqual(titles(conn), ["globex 1"])

    def test_upserts_run_through_dnr_exec(self):
        conn = connect(self.path)
        conn.execute("SELECT dnr_set_context(?, ?, NULL, 0)", (ACME, ALICE))
        upsert = (
            "INSERT INTO tasks (id, owner_id, title) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET title = excluded.title"
        )
        # SQLite refuses an upsert on the enforced name itself.
        with self.assertRaisesRegex(sqlite3.OperationalError, "UPSERT"):
            conn.execute(upsert, (1, ALICE, "x"))
        run = lambda sql, *params: conn.execute("SELECT dnr_exec(?" + ", ?" * len(params) + ")", (sql, *params)).fetchone()[0]
        self.assertEqual(run(upsert, 1, ALICE, "acme 1 upserted"), 1)
        self.assertEqual(titles(conn), ["acme 1 upserted"])
        # Globex's id 2 is free in Acme (keys are per tenant): DO NOTHING
        # writes Acme's own row 2, DO UPDATE then updates it.
        self.assertEqual(run(upsert.replace("DO UPDATE SET title = excluded.title", "DO NOTHING"), 2, ALICE, "mine"), 1)
        self.assertEqual(run(upsert, 2, ALICE, "mine, upserted"), 1)
        returned = run(upsert + " RETURNING id, tenant_id", 3, ALICE, "acme 3")
        self.assertEqual(returned, '[{"id":3,"tenant_id":"%s"}]' % ACME)
        conn.execute("SELECT dnr_set_context(?, ?, NULL, 0)", (GLOBEX, BOB))
        self.assertEqual(titles(conn), ["globex 1"])

    def test_an_app_upgrade_adds_a_column_through_dnr_migrate(self):
        conn = connect(self.path)
        with self.assertRaisesRegex(sqlite3.OperationalError, "Cannot add a column to a view"):
            conn.execute("ALTER TABLE tasks ADD COLUMN due TEXT")
        (summary,) = conn.execute(
            "SELECT dnr_migrate(?)", ("ALTER TABLE tasks ADD COLUMN due TEXT DEFAULT 'soon'",)
        ).fetchone()
        self.assertEqual(summary, "dnr: migrated 1 statement; enforcement rebuilt on 1 table")
        conn.close()
        # The next connection (the upgraded app) sees the column, still fenced.
        conn = connect(self.path)
        conn.execute("SELECT dnr_set_context(?, ?, NULL, 0)", (ACME, ALICE))
        conn.execute("UPDATE tasks SET due = 'monday' WHERE id = 1")
        self.assertEqual(conn.execute("SELECT id, due FROM tasks").fetchall(), [(1, "monday")])
        conn.execute("SELECT dnr_set_context(?, ?, NULL, 0)", (GLOBEX, BOB))
        self.assertEqual(conn.execute("SELECT id, due FROM tasks").fetchall(), [(2, "soon")])
        # A refused migration inside the app's own transaction changes nothing.
        conn.execute("BEGIN")
        with self.assertRaisesRegex(sqlite3.OperationalError, "cannot drop column `owner_id`"):
            conn.execute("SELECT dnr_migrate('ALTER TABLE tasks DROP COLUMN owner_id')")
        conn.execute("COMMIT")
        columns = [row[1] for row in conn.execute("PRAGMA table_info('_dnr_tasks')")]
        self.assertIn("owner_id", columns)


if __name__ == "__main__":
    unittest.main()
