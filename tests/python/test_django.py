"""Django's ORM over libdnr.so in Debian's python3: Model.objects.create,
save() of an existing object, QuerySet.update()/delete() counts, two
tenants, cross-tenant attempts change nothing, and a migration through
dnr_migrate. The app's code is unchanged; its connection setup loads DNR,
turns on dnr_count_changes() and sets the context.

Django reads a new row's id from `INSERT ... RETURNING`, which SQLite
answers from the values given to an enforced (virtual) table, not from what
was stored: the setup tells Django to use `lastrowid` instead
(`can_return_columns_from_insert = False`), which SQLite does set.

Run by scripts/sqlite-test.sh with the venv from tests/python/requirements.txt.
"""

import os
import tempfile
import unittest

import django
from django.conf import settings

from fixtures import ACME, ALICE, BOB, GLOBEX, LIB, apply_policy

DIR = tempfile.mkdtemp()
DB = os.path.join(DIR, "app.db")

settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DB}},
    INSTALLED_APPS=[],
    USE_TZ=True,
)
django.setup()

from django.db import connection, models  # noqa: E402
from django.db.backends.signals import connection_created  # noqa: E402


def load_dnr(sender, connection, **kwargs):
    raw = connection.connection
    raw.enable_load_extension(True)
    raw.load_extension(LIB)
    raw.enable_load_extension(False)
    raw.execute("SELECT dnr_count_changes()")
    connection.features.can_return_columns_from_insert = False


connection_created.connect(load_dnr)


# The tenant column is not a model field: DNR fills it on insert, and
# save() writes every field, so a stale NULL would be refused by the fence
# (as PostgreSQL's RLS refuses it).
class Task(models.Model):
    owner_id = models.CharField(max_length=36)
    title = models.TextField()
    done = models.BooleanField(default=False)

    class Meta:
        app_label = "app"
        db_table = "tasks"


def as_user(tenant, user):
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT dnr_set_context(%s, %s, NULL, 0)", [tenant, user])


class DjangoOverDnr(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        apply_policy(DB)

    def setUp(self):
        as_user(ACME, ALICE)
        Task.objects.all().delete()
        as_user(GLOBEX, BOB)
        Task.objects.all().delete()

    def test_create_save_update_delete_with_two_tenants(self):
        as_user(ACME, ALICE)
        task = Task.objects.create(owner_id=ALICE, title="acme 1")
        self.assertIsNotNone(task.pk)
        task.title = "acme 1 edited"
        task.save()  # an UPDATE that must report its row, or Django INSERTs
        self.assertEqual(Task.objects.count(), 1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT tenant_id FROM tasks WHERE id = %s", [task.pk])
            self.assertEqual(cursor.fetchone()[0], ACME)
        Task.objects.create(owner_id=ALICE, title="acme 2")
        self.assertEqual(Task.objects.filter(owner_id=ALICE).update(done=True), 2)

        as_user(GLOBEX, BOB)
        Task.objects.create(owner_id=BOB, title="globex 1")
        self.assertEqual(list(Task.objects.values_list("title", flat=True)), ["globex 1"])
        # Acme's rows are out of reach: counted as nothing.
        self.assertEqual(Task.objects.filter(pk=task.pk).update(title="hijacked"), 0)
        self.assertEqual(Task.objects.filter(title__startswith="acme").delete()[0], 0)
        self.assertEqual(Task.objects.all().delete()[0], 1)

        as_user(ACME, ALICE)
        self.assertEqual(
            sorted(Task.objects.values_list("title", "done")),
            [("acme 1 edited", True), ("acme 2", True)],
        )
        self.assertEqual(Task.objects.filter(title="acme 2").delete()[0], 1)
        self.assertEqual(Task.objects.count(), 1)

    def test_saving_another_tenants_object_does_not_overwrite_it(self):
        as_user(ACME, ALICE)
        task = Task.objects.create(owner_id=ALICE, title="mine")
        as_user(GLOBEX, BOB)
        task.title = "overwritten"
        task.owner_id = BOB
        # Django's UPDATE matches nothing in Globex, so it INSERTs with
        # Acme's key: free in Globex (keys are per tenant), a row of Globex.
        task.save()
        self.assertEqual(list(Task.objects.values_list("pk", "title")), [(task.pk, "overwritten")])
        as_user(ACME, ALICE)
        self.assertEqual(Task.objects.get(pk=task.pk).title, "mine")

    def test_a_schema_change_through_dnr_migrate(self):
        as_user(ACME, ALICE)
        Task.objects.create(owner_id=ALICE, title="acme 1")
        with connection.cursor() as cursor:
            cursor.execute("SELECT dnr_migrate(%s)", ["ALTER TABLE tasks ADD COLUMN due TEXT"])
            self.assertEqual(cursor.fetchone()[0], "dnr: migrated 1 statement; enforcement rebuilt on 1 table")
            cursor.execute("SELECT title, due FROM tasks")
            self.assertEqual(cursor.fetchall(), [("acme 1", None)])
        self.assertEqual(Task.objects.filter(title="acme 1").update(done=True), 1)


if __name__ == "__main__":
    unittest.main()
