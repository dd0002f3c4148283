// The package in real headless Chromium: a page uses it in a dedicated
// Worker with OPFS storage. Tenant A writes, the page reloads, and the rows
// are read back; tenant B sees nothing of A's.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { startServer } from "./server.mjs";

const CHROMIUM = process.env.DNR_CHROMIUM ?? "/usr/bin/chromium";
let server;
let context;
let profile;

before(async () => {
  server = await startServer();
  profile = await mkdtemp(path.join(tmpdir(), "dnr-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await context?.close();
  await server?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
});

async function run(page, url) {
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForFunction(() => window.dnrResult !== undefined, null, { timeout: 60_000 });
  const result = await page.evaluate(() => window.dnrResult);
  assert.equal(result.ok, true, `page failed: ${result.error} ${errors.join("; ")}`);
  return result.result;
}

test("OPFS: written as tenant A, read back after a reload; tenant B sees none of it", async () => {
  const page = await context.newPage();
  const logs = [];
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));

  const written = await run(page, `${server.url}/?phase=write`);
  assert.equal(written.summary, "string");
  assert.equal(written.written, 5);
  assert.match(written.refused ?? "", /create on `Task` refused by the tenant fence/);

  // A reload: a new page, a new Worker, the same OPFS.
  const read = await run(page, `${server.url}/?phase=read`);
  assert.deepEqual(read.acme, ["acme 1", "acme 2", "acme 3"], logs.join("\n"));
  assert.deepEqual(read.acmeAdmin, ["acme 1", "acme 2", "acme 3"]);
  assert.deepEqual(read.globex, ["globex 1"]);
  assert.deepEqual(read.globexAsAlice, []);
  assert.equal(read.noContext, 0);
  assert.notEqual(read.lockedStorage, "allowed");
  assert.notEqual(read.lockedContext, "allowed");
  assert.deepEqual(read.acmeFile, ["acme own file"]);
  assert.deepEqual(read.globexFile, []);
  assert.match(read.globexFileAsAcme, /belongs to tenant .*: a context of tenant .* is refused/);
  assert.deepEqual(read.globexFileAfter, []);

  // The app's next version: a new column on the database that holds rows.
  const upgraded = await run(page, `${server.url}/?phase=upgrade`);
  assert.equal(upgraded.summary, "dnr: migrated 1 statement; enforcement rebuilt on 1 table");
  assert.deepEqual(upgraded.acme, [
    { title: "acme 1", due: "monday" },
    { title: "acme 2", due: "someday" },
    { title: "acme 3", due: "someday" },
  ]);
  assert.deepEqual(upgraded.globex, [{ title: "globex 1", due: "someday" }]);
  assert.equal(upgraded.updated, 1);
  assert.equal(upgraded.globexUpdate, 0);
  assert.notEqual(upgraded.lockedAlter, "allowed");
  assert.deepEqual(upgraded.acmeAfter.map((r) => r.due), ["monday", "someday", "someday"]);
  // And after another reload the rows and the column are still there.
  const again = await run(page, `${server.url}/?phase=read`);
  assert.deepEqual(again.acme, ["acme 1", "acme 2", "acme 3"]);
  assert.deepEqual(again.globexAsAlice, []);
  await page.close();
});
