// Kysely over a DNR `Database`:
//
//   import { Kysely } from "kysely";
//   import { DnrDialect } from "dnr-wasm/kysely";
//   const qb = new Kysely({ dialect: new DnrDialect({ database: db }) });
//
// Kysely's SQLite adapter, introspector and query compiler, with a driver
// that runs every statement through the database's enforcement.
import { CompiledQuery, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from "kysely";

export class DnrDialect {
  #database;

  constructor({ database }) {
    if (!database) throw new Error("DnrDialect needs { database }");
    this.#database = database;
  }

  createAdapter() {
    return new SqliteAdapter();
  }

  createDriver() {
    return new DnrDriver(this.#database);
  }

  createIntrospector(db) {
    return new SqliteIntrospector(db);
  }

  createQueryCompiler() {
    return new SqliteQueryCompiler();
  }
}

// One connection, used by one query or transaction at a time.
class DnrDriver {
  #connection;
  #queue = Promise.resolve();
  #release = null;

  constructor(database) {
    this.#connection = new DnrConnection(database);
  }

  async init() {}

  async acquireConnection() {
    const previous = this.#queue;
    let release;
    this.#queue = new Promise((resolve) => (release = resolve));
    await previous;
    this.#release = release;
    return this.#connection;
  }

  async beginTransaction(connection) {
    await connection.executeQuery(CompiledQuery.raw("BEGIN"));
  }

  async commitTransaction(connection) {
    await connection.executeQuery(CompiledQuery.raw("COMMIT"));
  }

  async rollbackTransaction(connection) {
    await connection.executeQuery(CompiledQuery.raw("ROLLBACK"));
  }

  async releaseConnection() {
    const release = this.#release;
    this.#release = null;
    release?.();
  }

  async destroy() {}
}

const READS = /^\s*(select|with|pragma|values|explain)\b/i;

class DnrConnection {
  #db;

  constructor(database) {
    this.#db = database;
  }

  async executeQuery(compiled) {
    const { sql, parameters, query } = compiled;
    const params = [...parameters];
    if (query?.kind === "SelectQueryNode" || query?.returning || READS.test(sql)) {
      return { rows: await this.#db.query(sql, params) };
    }
    const written = await this.#db.exec(sql, params);
    const result = { rows: [], numAffectedRows: BigInt(written) };
    if (query?.kind === "InsertQueryNode") {
      const [{ id }] = await this.#db.query("SELECT last_insert_rowid() AS id");
      result.insertId = BigInt(id);
    }
    return result;
  }

  async *streamQuery() {
    throw new Error("dnr-wasm: streaming queries are not supported; use execute()");
  }
}
