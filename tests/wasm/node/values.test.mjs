// Parameters and results: the JS <-> SQLite type mapping.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Database } from "dnr-wasm";

test("results map SQLite types to JS types", async () => {
  const db = await Database.open();
  const [row] = db.query(
    "SELECT 42 AS i, -7 AS neg, 1.5 AS f, 'héllo' AS t, NULL AS n, x'00ff10' AS b, 9007199254740991 AS maxsafe, 9007199254740992 AS big, -9223372036854775808 AS min",
  );
  assert.deepEqual(row, {
    i: 42,
    neg: -7,
    f: 1.5,
    t: "héllo",
    n: null,
    b: new Uint8Array([0, 255, 16]),
    maxsafe: 9007199254740991,
    big: 9007199254740992n,
    min: -9223372036854775808n,
  });
  assert.ok(row.b instanceof Uint8Array);
  db.close();
});

test("parameters bind with their JS types and round-trip", async () => {
  const db = await Database.open();
  db.exec("CREATE TABLE items (i INTEGER, r REAL, t TEXT, b BLOB, x)");
  const blob = new Uint8Array([1, 2, 3, 250]);
  assert.equal(db.exec("INSERT INTO items VALUES (?, ?, ?, ?, ?)", [2n ** 62n, 0.1 + 0.2, "text", blob, null]), 1);
  assert.equal(db.exec("INSERT INTO items VALUES (?, ?, ?, ?, ?)", [-(2n ** 63n), -1e300, "", new Uint8Array(), undefined]), 1);
  assert.equal(db.exec("INSERT INTO items VALUES (?, ?, ?, ?, ?)", [7, 2.5, "z", blob.buffer, true]), 1);
  const rows = db.query("SELECT i, r, t, b, x, typeof(x) AS tx FROM items ORDER BY rowid");
  assert.deepEqual(rows, [
    { i: 2n ** 62n, r: 0.30000000000000004, t: "text", b: blob, x: null, tx: "null" },
    { i: -(2n ** 63n), r: -1e300, t: "", b: new Uint8Array(), x: null, tx: "null" },
    { i: 7, r: 2.5, t: "z", b: blob, x: 1, tx: "integer" },
  ]);
  // Integral numbers bind as INTEGER, others as REAL.
  assert.deepEqual(db.query("SELECT typeof(?) AS a, typeof(?) AS b, typeof(?) AS c, typeof(?) AS d", [3, 3.25, 5n, "3"]), [
    { a: "integer", b: "real", c: "integer", d: "text" },
  ]);
  assert.deepEqual(db.query("SELECT ? = ? AS same", [2n ** 60n, 2n ** 60n]), [{ same: 1 }]);
  db.close();
});

test("bad parameters are errors, not guesses", async () => {
  const db = await Database.open();
  assert.throws(() => db.query("SELECT ?", [2n ** 64n]), /bigint is outside SQLite's 64-bit integer range/);
  assert.throws(() => db.query("SELECT ?", [{ a: 1 }]), /parameter 1: unsupported value of type `object`/);
  assert.throws(() => db.query("SELECT ?", [Symbol("s")]), /unsupported value/);
  assert.throws(() => db.query("SELECT ?, ?", [1]), /2 parameter\(s\), 1 given/);
  assert.throws(() => db.query("SELECT 1", [1]), /0 parameter\(s\), 1 given/);
  assert.throws(() => db.query("SELECT ?", "nope"), /params must be an array/);
  assert.throws(() => db.exec("SELECT ?; SELECT ?", [1]), /parameters need a single statement/);
  db.close();
});

test("rows keep every value exactly, whatever the text or the column names", async () => {
  const db = await Database.open();
  const texts = ['"quoted"', "back\\slash", "line\nbreak\r\ttab", "nul\u0000byte", "\u0001\u001f\u007f", "é ü 中文 🎉", "\u2028\u2029", "</script>", ""];
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, x)");
  texts.forEach((text, i) => db.exec("INSERT INTO t VALUES (?, ?)", [i, text]));
  assert.deepEqual(db.query("SELECT x FROM t ORDER BY id").map((r) => r.x), texts);
  // Values JSON has no notation for, in the middle of ordinary ones.
  const rows = db.query(
    "SELECT 1 AS a, 9e999 AS inf, -9e999 AS ninf, 2 AS b, 9223372036854775807 AS big, x'01' AS blob, -0.0 AS negzero, 1e300 AS huge, 5e-324 AS tiny, 0.1 AS tenth",
  );
  assert.deepEqual(rows, [
    { a: 1, inf: Infinity, ninf: -Infinity, b: 2, big: 9223372036854775807n, blob: new Uint8Array([1]), negzero: -0, huge: 1e300, tiny: 5e-324, tenth: 0.1 },
  ]);
  assert.deepEqual(Object.keys(rows[0]), ["a", "inf", "ninf", "b", "big", "blob", "negzero", "huge", "tiny", "tenth"]);
  // Odd column names; a repeated name keeps its first place and the last value.
  const [odd] = db.query(`SELECT 1 AS "a""b", 2 AS "back\\slash", 3 AS "", 4 AS "10", 5 AS "x", 6 AS "x", x'02' AS "x", 7 AS "é\n"`);
  assert.deepEqual(Object.keys(odd), ["10", 'a"b', "back\\slash", "", "x", "é\n"]);
  assert.deepEqual(odd, { 'a"b': 1, "back\\slash": 2, "": 3, 10: 4, x: new Uint8Array([2]), "é\n": 7 });
  // `__proto__` is not made a key (as before: the value is set through it).
  const [proto] = db.query("SELECT 1 AS __proto__, 2 AS y");
  assert.deepEqual(Object.keys(proto), ["y"]);
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  // Many rows, with the special values among them.
  db.exec("CREATE TABLE many (i INTEGER, big INTEGER, b BLOB)");
  db.exec("BEGIN");
  for (let i = 0; i < 2000; i++) db.exec("INSERT INTO many VALUES (?, ?, ?)", [i, i % 100 === 0 ? 2n ** 60n + BigInt(i) : i, i % 250 === 0 ? new Uint8Array([i & 255]) : null]);
  db.exec("COMMIT");
  const many = db.query("SELECT i, big, b FROM many ORDER BY i");
  assert.equal(many.length, 2000);
  many.forEach((row, i) => {
    assert.deepEqual(row, { i, big: i % 100 === 0 ? 2n ** 60n + BigInt(i) : i, b: i % 250 === 0 ? new Uint8Array([i & 255]) : null });
  });
  assert.deepEqual(db.query("SELECT 1 AS a WHERE 0"), []);
  db.close();
});
