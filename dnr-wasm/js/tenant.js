// Database per tenant: one database file per tenant (mode `database`), e.g.
// one OPFS file each in the browser. Shared by the Worker client and usable
// directly inside a Worker.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The database path of one tenant: `tenants/<uuid>/data.db` (under `prefix`
 * if given). The id must be a hyphenated uuid; it is lowercased so that one
 * tenant never gets two files.
 */
export function tenantPath(tenant, prefix = "") {
  if (typeof tenant !== "string" || !UUID.test(tenant)) {
    throw new Error(`invalid tenant id \`${tenant}\`: expected a hyphenated uuid`);
  }
  const base = prefix ? `${String(prefix).replace(/\/+$/, "")}/` : "";
  return `${base}tenants/${tenant.toLowerCase()}/data.db`;
}

/**
 * Opens tenant `tenant`'s own database with `Database` (the class from this
 * package), applies `policies` if given and sets the context to the tenant
 * (plus `user` and `roles`). Defaults to OPFS storage, which needs a
 * dedicated Worker; pass `storage: "memory"` elsewhere (e.g. in tests).
 */
export async function openTenantDatabase(Database, tenant, options = {}) {
  const { storage = "opfs", prefix = "", policies, user = null, roles = [] } = options;
  const db = await Database.open({ storage, path: tenantPath(tenant, prefix) });
  try {
    if (policies) db.applyPolicies(policies);
    // The file records its tenant: a context of another is refused on it.
    db.bindTenant(tenant.toLowerCase());
    db.setContext({ tenant, user, roles });
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}
