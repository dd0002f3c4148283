//! Core benchmarks, each reported as a ratio to a baseline measured in the
//! same run: the evaluator against a hand-written check of the same rule,
//! and compiling a 50-entity file against parsing it.
//! Run with `cargo bench -p dnr-core --bench core`; prints markdown rows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use dnr_core::compile::{compile, Target};
use dnr_core::value::parse_uuid;
use dnr_core::{Operation, Row, TenantContext, Value};

/// Best of several rounds: the machine is shared and noisy.
fn best_of(rounds: usize, mut f: impl FnMut()) -> Duration {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    let policy = dnr_core::parse(include_str!("../../examples/tasks.dnr")).unwrap();
    let tenants: Vec<uuid::Uuid> = (0..10)
        .map(|i| parse_uuid(&format!("{i:08x}-0000-4000-8000-000000000000")).unwrap())
        .collect();
    let users: Vec<uuid::Uuid> = (0..50)
        .map(|i| parse_uuid(&format!("00000000-0000-4000-8000-{i:012x}")).unwrap())
        .collect();
    let rows: Vec<Row> = (0..10_000)
        .map(|i| {
            Row::new()
                .with("tenant_id", Value::Uuid(tenants[i % tenants.len()]))
                .with("owner_id", Value::Uuid(users[i % users.len()]))
                .with("status", Value::Text("todo".into()))
        })
        .collect();
    let ctx = TenantContext {
        tenant: Some(tenants[3]),
        user: Some(users[3]),
        roles: Default::default(),
    };

    let evaluator = best_of(5, || {
        let mut allowed = 0;
        for row in &rows {
            allowed += usize::from(
                policy
                    .decide("Task", Operation::Read, &ctx, row)
                    .unwrap()
                    .allowed,
            );
        }
        black_box(allowed);
    });
    // The same rule, written by hand: fence and `owner_id = current_user or role(admin)`.
    let by_hand = best_of(5, || {
        let mut allowed = 0;
        for row in &rows {
            let fence = matches!(row.get("tenant_id"), Value::Uuid(t) if Some(*t) == ctx.tenant);
            let owner = matches!(row.get("owner_id"), Value::Uuid(u) if Some(*u) == ctx.user);
            allowed += usize::from(fence && (owner || ctx.has_role("admin")));
        }
        black_box(allowed);
    });
    let per_second = rows.len() as f64 / evaluator.as_secs_f64();
    println!("| evaluator: read decisions | {per_second:.0}/s | hand-written check of the same rule | {:.2}x |", evaluator.as_secs_f64() / by_hand.as_secs_f64());

    let mut source = String::from("tenancy:\n  mode: row_level\n");
    for i in 0..50 {
        source.push_str(&format!(
            "\nentity Thing{i}:\n  id: uuid pk\n  owner_id: uuid\n  title: str(200)\n  status: enum[a,b,c]\n  n: int\n  access:\n    create: authenticated\n    read: owner_id = current_user or role(admin) or status in ['a', 'b']\n    update: owner_id = current_user and n < 10\n    delete: owner_id = current_user and not (status = 'c')\n  forbid:\n    delete: role(guest)\n"
        ));
    }
    let parse = best_of(10, || {
        black_box(dnr_core::parse(black_box(&source)).unwrap());
    });
    for (target, name) in [
        (Target::Postgres, "postgres"),
        (Target::PostgresPlain, "postgres-plain"),
        (Target::Sqlite, "sqlite"),
    ] {
        let total = best_of(10, || {
            let set = dnr_core::parse(black_box(&source)).unwrap();
            black_box(compile(&set, target).unwrap());
        });
        println!(
            "| compile 50 entities ({name}) | {:.2} ms | parsing the same file ({:.2} ms) | {:.2}x |",
            total.as_secs_f64() * 1e3,
            parse.as_secs_f64() * 1e3,
            total.as_secs_f64() / parse.as_secs_f64()
        );
    }
}
