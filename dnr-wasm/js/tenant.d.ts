import type { Database } from "./dnr_wasm.js";

export interface TenantOptions {
  /** Default `"opfs"` (dedicated Worker only); `"memory"` elsewhere. */
  storage?: "memory" | "opfs";
  /** Prepended to `tenants/<uuid>/data.db`. */
  prefix?: string;
  /** Applied to the tenant's database before the context is set. */
  policies?: string;
  user?: string | null;
  roles?: string[];
}

/** `[prefix/]tenants/<uuid>/data.db`; throws on an id that is not a uuid. */
export function tenantPath(tenant: string, prefix?: string): string;

/** Opens the tenant's own database, applies `policies`, sets the context. */
export function openTenantDatabase(
  database: typeof Database,
  tenant: string,
  options?: TenantOptions,
): Promise<Database>;
