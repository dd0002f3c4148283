"""SQLAlchemy 2 ORM over libdnr.so in Debian's python3: a session's create,
read, update and delete work on an enforced table (dnr_count_changes() makes
SQLite count the writes, as the ORM's flush checks), tenants are isolated,
cross-tenant writes change nothing, and a migration adds a column.

The engine has `use_insertmanyvalues=False`: SQLAlchemy's batched INSERT
reads new keys with RETURNING, which SQLite answers from the values given to
an enforced (virtual) table, not from what was stored; without batching it
reads `lastrowid`, which is right.

Run by scripts/sqlite-test.sh with the venv from tests/python/requirements.txt.
"""

import os
import tempfile
import unittest

from sqlalchemy import Integer, String, create_engine, event, func, select, text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from fixtures import ACME, ALICE, BOB, GLOBEX, LIB, apply_policy



class Base(DeclarativeBase):
    pass


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(String, nullable=True)
    owner_id: Mapped[str] = mapped_column(String)
    title: Mapped[str] = mapped_column(String)


class SqlAlchemyOverDnr(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        path = os.path.join(self.dir.name, "app.db")
        apply_policy(path)
        self.context = (ACME, ALICE)
        self.engine = create_engine(f"sqlite:///{path}", use_insertmanyvalues=False)

        @event.listens_for(self.engine, "connect")
        def load(dbapi_conn, _record):
            dbapi_conn.enable_load_extension(True)
            dbapi_conn.load_extension(LIB)
            dbapi_conn.enable_load_extension(False)
            dbapi_conn.execute("SELECT dnr_count_changes()")
            # SQLAlchemy's recipe for real SQLite transactions: pysqlite
            # does not begin one before a SELECT, and the context set in
            # SQL lasts for its transaction (as on PostgreSQL).
            dbapi_conn.isolation_level = None

        @event.listens_for(self.engine, "begin")
        def set_context(conn):
            conn.exec_driver_sql("BEGIN")
            if self.context is not None:
                conn.exec_driver_sql("SELECT dnr_set_context(?, ?)", self.context)

    def tearDown(self):
        self.engine.dispose()
        self.dir.cleanup()

    def as_user(self, tenant, user):
        self.context = (tenant, user)
        return Session(self.engine)

    def test_session_crud_with_two_tenants(self):
        with self.as_user(ACME, ALICE) as s:
            task = Task(owner_id=ALICE, title="acme 1")
            s.add(task)
            s.commit()
            # The primary key and the filled tenant come back.
            self.assertEqual(task.id, 1)
            self.assertEqual(task.tenant_id, ACME)
            # Several new objects in one flush get their keys too.
            batch = [Task(owner_id=ALICE, title=f"batch {i}") for i in range(3)]
            s.add_all(batch)
            s.commit()
            self.assertEqual([t.id for t in batch], [2, 3, 4])
            for t in batch:
                s.delete(t)
            s.commit()
            task.title = "acme 1 edited"
            s.commit()  # a flush that checks the UPDATE's row count
            self.assertEqual(s.scalars(select(Task.title)).all(), ["acme 1 edited"])
        with self.as_user(GLOBEX, BOB) as s:
            s.add(Task(owner_id=BOB, title="globex 1"))
            s.commit()
            self.assertEqual(s.scalars(select(Task.title)).all(), ["globex 1"])
            # Bulk statements report exact counts: nothing of Acme's is hit.
            result = s.execute(update(Task).values(title="hijacked"))
            self.assertEqual(result.rowcount, 1)
            s.commit()
        with self.as_user(ACME, ALICE) as s:
            self.assertEqual(s.scalars(select(Task.title)).all(), ["acme 1 edited"])
            task = s.get(Task, 1)
            s.delete(task)
            s.commit()
            self.assertEqual(s.scalars(select(Task)).all(), [])
        with self.as_user(GLOBEX, BOB) as s:
            self.assertEqual(s.scalars(select(Task.title)).all(), ["hijacked"])

    def test_a_pooled_connection_keeps_no_context_between_requests(self):
        with self.as_user(ACME, ALICE) as s:
            s.add(Task(id=1, owner_id=ALICE, title="acme 1"))
            s.commit()
            self.assertEqual(s.scalars(select(Task.title)).all(), ["acme 1"])
            first = s.connection().connection.dbapi_connection
        # The next request on the same pooled connection sets no context.
        self.context = None
        with Session(self.engine) as s:
            self.assertIs(s.connection().connection.dbapi_connection, first)
            self.assertEqual(s.execute(text("SELECT dnr_tenant()")).scalar(), None)
            self.assertEqual(s.scalars(select(Task.title)).all(), [])

    def test_an_object_loaded_by_one_tenant_is_not_written_by_another(self):
        with self.as_user(ACME, ALICE) as s:
            s.add(Task(owner_id=ALICE, title="mine"))
            s.commit()
        s = Session(self.engine, expire_on_commit=False)
        self.context = (ACME, ALICE)
        task = s.get(Task, 1)
        s.commit()
        # The same session's next transaction runs as another tenant: its
        # UPDATE matches no row and the flush says so, as on PostgreSQL.
        self.context = (GLOBEX, BOB)
        task.title = "stolen"
        with self.assertRaises(StaleDataError):
            s.commit()
        s.close()
        with self.as_user(ACME, ALICE) as s:
            self.assertEqual(s.get(Task, 1).title, "mine")

    def test_a_migration_adds_a_column(self):
        with self.as_user(ACME, ALICE) as s:
            s.add(Task(owner_id=ALICE, title="acme 1"))
            s.commit()
            summary = s.execute(
                select(func.dnr_migrate("ALTER TABLE tasks ADD COLUMN due TEXT"))
            ).scalar_one()
            s.commit()
            self.assertEqual(summary, "dnr: migrated 1 statement; enforcement rebuilt on 1 table")
            s.execute(update(Task).values(title="after"))
            s.commit()
            rows = s.execute(text("SELECT title, due FROM tasks")).all()
            self.assertEqual([tuple(r) for r in rows], [("after", None)])


if __name__ == "__main__":
    unittest.main()
