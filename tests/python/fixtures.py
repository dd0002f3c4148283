"""What the Python host tests share: the library, the ids, the policy."""

import os
import sqlite3

LIB = os.environ.get("DNR_LIB", "target/release/libdnr")
ACME = "11111111-1111-4111-8111-111111111111"
GLOBEX = "22222222-2222-4222-8222-222222222222"
ALICE = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
BOB = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
POLICY = """
entity Task:
  table: tasks
  id: int pk
  owner_id: uuid
  title: text required
  done: bool = false
  access:
    create: authenticated
    read: owner_id = current_user or role(admin)
    update: owner_id = current_user
    delete: owner_id = current_user
"""


def connect(path):
    """A plain sqlite3 connection (autocommit) with libdnr.so loaded."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.enable_load_extension(True)
    conn.load_extension(LIB)
    conn.enable_load_extension(False)
    return conn


def apply_policy(path):
    """Enforces POLICY on the database file, as an app's setup would."""
    conn = connect(path)
    conn.execute("SELECT dnr_apply(?)", (POLICY,))
    conn.close()
