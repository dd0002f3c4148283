//! Generated cases: a policy over a fixed set of columns, initial rows, and a
//! sequence of reads and writes under varying contexts.

use serde::{Deserialize, Serialize};

/// Column set of every generated entity: `id int pk`, `n int`, `t str`,
/// `u uuid`, `b bool`, plus the tenant column when tenant-scoped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub seed: u64,
    pub entities: Vec<EntitySpec>,
    pub rows: Vec<SeedRow>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntitySpec {
    pub name: String,
    pub table: String,
    pub scoped: bool,
    /// `(block, key, condition)`: block is `access` or `forbid`.
    pub rules: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Values {
    pub id: i64,
    pub n: Option<i64>,
    pub t: Option<String>,
    pub u: Option<String>,
    pub b: Option<bool>,
    /// Declared `d: int = 3`: NULL on insert becomes 3 in every engine.
    #[serde(default)]
    pub d: Option<i64>,
}

/// A row present before the policy under test is applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedRow {
    pub table: String,
    pub tenant: Option<String>,
    pub values: Values,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ctx {
    pub tenant: Option<String>,
    pub user: Option<String>,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub ctx: Ctx,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    Read {
        table: String,
    },
    /// `tenant: None` leaves the tenant column out (filled from the context).
    Insert {
        table: String,
        tenant: Option<String>,
        values: Values,
    },
    /// Sets `n` and `u`, and the tenant column when `move_to` is given.
    Update {
        table: String,
        id: i64,
        n: Option<i64>,
        u: Option<String>,
        move_to: Option<String>,
        /// `RETURNING id`: the ids written are the outcome.
        #[serde(default)]
        returning: bool,
    },
    Delete {
        table: String,
        id: i64,
        #[serde(default)]
        returning: bool,
    },
    /// An insert that meets a conflict on `id` as `mode` says.
    Upsert {
        table: String,
        tenant: Option<String>,
        values: Values,
        mode: Conflict,
        #[serde(default)]
        returning: bool,
    },
    /// A schema change: `ALTER TABLE <table> ADD COLUMN <column> INTEGER`,
    /// run as each engine's owner runs migrations.
    AddColumn {
        table: String,
        column: String,
    },
}

/// How an upsert meets a row with the same key, and the statement each
/// engine runs for it (PostgreSQL / SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conflict {
    /// `ON CONFLICT (id) DO UPDATE SET n = excluded.n, u = excluded.u`.
    DoUpdate,
    /// `ON CONFLICT (id) DO NOTHING`.
    DoNothing,
    /// SQLite `INSERT OR IGNORE`; PostgreSQL `ON CONFLICT DO NOTHING`.
    Ignore,
    /// SQLite `INSERT OR REPLACE`; PostgreSQL `ON CONFLICT (id) DO UPDATE`
    /// of every column (the tenant column included).
    Replace,
}

impl Conflict {
    /// The PostgreSQL clause after the VALUES list.
    pub fn postgres_clause(self, scoped: bool) -> &'static str {
        match (self, scoped) {
            (Conflict::DoUpdate, _) => " ON CONFLICT (id) DO UPDATE SET n = excluded.n, u = excluded.u",
            (Conflict::DoNothing, _) => " ON CONFLICT (id) DO NOTHING",
            (Conflict::Ignore, _) => " ON CONFLICT DO NOTHING",
            (Conflict::Replace, true) => " ON CONFLICT (id) DO UPDATE SET n = excluded.n, t = excluded.t, u = excluded.u, b = excluded.b, d = excluded.d, tenant_id = excluded.tenant_id",
            (Conflict::Replace, false) => " ON CONFLICT (id) DO UPDATE SET n = excluded.n, t = excluded.t, u = excluded.u, b = excluded.b, d = excluded.d",
        }
    }

    /// The SQLite statement's verb and clause: `(verb, clause)`.
    pub fn sqlite_parts(self) -> (&'static str, &'static str) {
        match self {
            Conflict::DoUpdate => (
                "INSERT INTO",
                " ON CONFLICT (id) DO UPDATE SET n = excluded.n, u = excluded.u",
            ),
            Conflict::DoNothing => ("INSERT INTO", " ON CONFLICT (id) DO NOTHING"),
            Conflict::Ignore => ("INSERT OR IGNORE INTO", ""),
            Conflict::Replace => ("INSERT OR REPLACE INTO", ""),
        }
    }
}

/// The columns an insert names, and its `?` placeholders: the tenant column
/// only when given.
pub fn insert_columns(tenant_given: bool) -> (&'static str, &'static str) {
    if tenant_given {
        ("id, n, t, u, b, d, tenant_id", "?, ?, ?, ?, ?, ?, ?")
    } else {
        ("id, n, t, u, b, d", "?, ?, ?, ?, ?, ?")
    }
}

impl Action {
    pub fn table(&self) -> &str {
        match self {
            Action::Read { table }
            | Action::Insert { table, .. }
            | Action::Update { table, .. }
            | Action::Delete { table, .. }
            | Action::Upsert { table, .. }
            | Action::AddColumn { table, .. } => table,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Rows(Vec<i64>),
    Inserted,
    Updated,
    Deleted,
    /// An update or delete that the rules filtered out (or no such row).
    Skipped,
    /// A write that raised an error.
    Refused,
    /// An upsert that wrote its row (inserted or updated: one row counted).
    Upserted,
    /// The ids a write's `RETURNING id` gave, sorted.
    Returned(Vec<i64>),
    /// A schema change that went through.
    Migrated,
}

pub const TENANTS: [&str; 2] = [
    "11111111-1111-4111-8111-111111111111",
    "22222222-2222-4222-8222-222222222222",
];
pub const USERS: [&str; 2] = [
    "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa",
    "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb",
];
pub const ROLES: [&str; 2] = ["admin", "staff"];
const TEXTS: [&str; 7] = ["", "a", "B", "b", "ab", "Z", "é"];

impl Case {
    /// The policy under test, as `.dnr` source.
    pub fn policy(&self) -> String {
        self.policy_text(false)
    }

    /// Everything allowed (fence aside): used to write the seed rows through
    /// each engine's own enforcement before the policy under test replaces it.
    pub fn setup_policy(&self) -> String {
        self.policy_text(true)
    }

    fn policy_text(&self, permissive: bool) -> String {
        let mut out = String::from("tenancy:\n  mode: row_level\n  column: tenant_id\n");
        for entity in &self.entities {
            out.push_str(&format!(
                "\nentity {}:\n  table: {}\n",
                entity.name, entity.table
            ));
            if !entity.scoped {
                out.push_str("  tenant: none\n");
            }
            out.push_str("  id: int pk\n  n: int\n  t: str\n  u: uuid\n  b: bool\n  d: int = 3\n");
            if entity.scoped {
                out.push_str("  tenant_id: uuid\n");
            }
            if permissive {
                out.push_str("  access:\n    read: true\n    write: true\n    delete: true\n");
                continue;
            }
            for block in ["access", "forbid"] {
                let lines: Vec<_> = entity.rules.iter().filter(|(b, _, _)| b == block).collect();
                if !lines.is_empty() {
                    out.push_str(&format!("  {block}:\n"));
                    for (_, key, condition) in lines {
                        out.push_str(&format!("    {key}: {condition}\n"));
                    }
                }
            }
        }
        out
    }

    pub fn entity(&self, table: &str) -> Option<&EntitySpec> {
        self.entities.iter().find(|e| e.table == table)
    }
}

/// splitmix64: small, deterministic, good enough to drive generation.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn maybe<T>(rng: &mut Rng, percent_null: u64, value: T) -> Option<T> {
    if rng.chance(percent_null) {
        None
    } else {
        Some(value)
    }
}

fn rng_small(rng: &mut Rng) -> i64 {
    rng.below(5) as i64
}

fn pick_str(rng: &mut Rng, items: &[&'static str]) -> &'static str {
    items[rng.below(items.len())]
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn condition(rng: &mut Rng, scoped: bool, depth: u32) -> String {
    if depth < 2 && rng.chance(40) {
        let a = condition(rng, scoped, depth + 1);
        let b = condition(rng, scoped, depth + 1);
        return match rng.below(3) {
            0 => format!("({a}) and ({b})"),
            1 => format!("({a}) or ({b})"),
            _ => format!("not ({a})"),
        };
    }
    let cmp = *rng.pick(&["=", "!=", "<", "<=", ">", ">="]);
    match rng.below(13) {
        0 => rng.pick(&["true", "false"]).to_string(),
        1 => rng.pick(&["authenticated", "anonymous"]).to_string(),
        2 => format!("role({})", rng.pick(&ROLES)),
        3 => format!("n {cmp} {}", rng.below(5) as i64 - 1),
        4 => format!("{} {cmp} {}", rng.pick(&["n", "d"]), rng.below(5) as i64),
        5 => format!("t {cmp} {}", quoted(pick_str(rng, &TEXTS))),
        6 | 7 => format!("u {} current_user", rng.pick(&["=", "!="])),
        8 => format!("u = {}", quoted(pick_str(rng, &USERS))),
        9 => format!("b = {}", rng.pick(&["true", "false"])),
        10 => {
            let items: Vec<String> = (0..1 + rng.below(3))
                .map(|_| (rng.below(5) as i64 - 1).to_string())
                .collect();
            format!(
                "n {}in [{}]",
                if rng.chance(50) { "not " } else { "" },
                items.join(", ")
            )
        }
        11 => format!(
            "{} is {}null",
            rng.pick(&["n", "t", "u", "b", "d"]),
            if rng.chance(50) { "not " } else { "" }
        ),
        _ if scoped => format!("tenant_id {} current_tenant", rng.pick(&["=", "!="])),
        _ => format!("t {} {}", rng.pick(&["in", "not in"]), "['a', 'b']"),
    }
}

fn values(rng: &mut Rng, id: i64) -> Values {
    let n = rng.below(5) as i64 - 1;
    let t = rng.pick(&TEXTS).to_string();
    let u = rng.pick(&USERS).to_string();
    let b = rng.chance(50);
    let d = rng_small(rng);
    Values {
        id,
        n: maybe(rng, 20, n),
        t: maybe(rng, 20, t),
        u: maybe(rng, 25, u),
        b: maybe(rng, 20, b),
        d: maybe(rng, 50, d),
    }
}

fn context(rng: &mut Rng) -> Ctx {
    let tenant = rng.pick(&TENANTS).to_string();
    let tenant = maybe(rng, 15, tenant);
    let user = rng.pick(&USERS).to_string();
    let user = maybe(rng, 25, user);
    let roles = ROLES
        .iter()
        .filter(|_| rng.chance(30))
        .map(|r| r.to_string())
        .collect();
    Ctx {
        tenant,
        user,
        roles,
    }
}

pub fn generate(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let entity_count = 1 + rng.below(2);
    let mut entities = Vec::new();
    for index in 0..entity_count {
        let scoped = index == 0 || rng.chance(70);
        let mut rules = Vec::new();
        for key in ["create", "read", "update", "delete", "write", "list"] {
            let permits = match key {
                "write" | "list" => usize::from(rng.chance(20)),
                _ => rng.below(3) + usize::from(key == "read" && rng.chance(60)),
            };
            for _ in 0..permits.min(2) {
                // Plenty of plain `true` rules, so that writes get through
                // often enough to exercise the later steps.
                let rule = if rng.chance(35) {
                    "true".to_string()
                } else {
                    condition(&mut rng, scoped, 0)
                };
                rules.push(("access".to_string(), key.to_string(), rule));
            }
            if key != "list" && key != "write" && rng.chance(20) {
                rules.push((
                    "forbid".to_string(),
                    key.to_string(),
                    condition(&mut rng, scoped, 1),
                ));
            }
        }
        entities.push(EntitySpec {
            name: format!("E{index}"),
            table: format!("conf_e{index}"),
            scoped,
            rules,
        });
    }
    let mut next_id = 1;
    let mut rows = Vec::new();
    for entity in &entities {
        for _ in 0..4 + rng.below(6) {
            let tenant = entity.scoped.then(|| rng.pick(&TENANTS).to_string());
            rows.push(SeedRow {
                table: entity.table.clone(),
                tenant,
                values: values(&mut rng, next_id),
            });
            next_id += 1;
        }
    }
    let mut steps = Vec::new();
    for _ in 0..10 + rng.below(10) {
        let entity = rng.pick(&entities).clone();
        let table = entity.table.clone();
        let existing: Vec<i64> = rows
            .iter()
            .filter(|r| r.table == table)
            .map(|r| r.values.id)
            .collect();
        let some_id = |rng: &mut Rng| {
            if rng.chance(85) && !existing.is_empty() {
                *rng.pick(&existing)
            } else {
                999
            }
        };
        let action = match rng.below(20) {
            0..=5 => Action::Read { table },
            6..=8 => {
                // Sometimes reuse an id that exists, possibly in another tenant.
                let id = if rng.chance(20) {
                    some_id(&mut rng)
                } else {
                    next_id
                };
                next_id += 1;
                let tenant = if entity.scoped && rng.chance(40) {
                    Some(rng.pick(&TENANTS).to_string())
                } else {
                    None
                };
                Action::Insert {
                    table,
                    tenant,
                    values: values(&mut rng, id),
                }
            }
            9..=12 => {
                let id = some_id(&mut rng);
                let v = values(&mut rng, id);
                let move_to =
                    (entity.scoped && rng.chance(25)).then(|| rng.pick(&TENANTS).to_string());
                Action::Update {
                    table,
                    id,
                    n: v.n,
                    u: v.u,
                    move_to,
                    returning: rng.chance(30),
                }
            }
            13 | 14 => Action::Delete {
                table,
                id: some_id(&mut rng),
                returning: rng.chance(30),
            },
            15..=18 => {
                // Mostly onto an existing id: the conflict is the point.
                let id = if rng.chance(70) {
                    some_id(&mut rng)
                } else {
                    next_id
                };
                next_id += 1;
                let tenant = if entity.scoped && rng.chance(30) {
                    Some(rng.pick(&TENANTS).to_string())
                } else {
                    None
                };
                let mode = *rng.pick(&[
                    Conflict::DoUpdate,
                    Conflict::DoNothing,
                    Conflict::Ignore,
                    Conflict::Replace,
                ]);
                Action::Upsert {
                    table,
                    tenant,
                    values: values(&mut rng, id),
                    mode,
                    returning: rng.chance(30),
                }
            }
            _ => Action::AddColumn {
                table,
                column: format!("x{}", steps.len()),
            },
        };
        steps.push(Step {
            ctx: context(&mut rng),
            action,
        });
    }
    Case {
        seed,
        entities,
        rows,
        steps,
    }
}
