//! Core benchmarks, each reported as a ratio to a baseline measured in the
//! same run: the evaluator against a hand-written check of the same rule,
//! and compiling a 50-entity file against parsing it; each ratio is the
//! median of alternating rounds. Signed context's first (uncached)
//! verification of a token is reported per token: EdDSA against the
//! issue's 100 µs target, HS256 against EdDSA.
//! Run with `cargo bench -p dnr-core --bench core`; prints markdown rows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use dnr_core::compile::{compile, Target};
use dnr_core::value::parse_uuid;
use dnr_core::{Operation, Row, TenantContext, Value};

fn time(f: &mut impl FnMut()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// Runs `measured` and `baseline` in alternating rounds (the machine is
/// shared and noisy: a ratio within a round is less affected by changes in
/// its load than one of independent bests) and returns the fastest round of
/// `measured`, of `baseline`, and the median of the rounds' ratios.
fn paired(
    rounds: usize,
    mut measured: impl FnMut(),
    mut baseline: impl FnMut(),
) -> (Duration, Duration, f64) {
    let mut best = (Duration::MAX, Duration::MAX);
    let mut ratios: Vec<f64> = (0..rounds)
        .map(|_| {
            let m = time(&mut measured);
            let b = time(&mut baseline);
            best = (best.0.min(m), best.1.min(b));
            m.as_secs_f64() / b.as_secs_f64()
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    (best.0, best.1, ratios[rounds / 2])
}

fn main() {
    let policy = dnr_core::parse(include_str!("../../examples/tasks.dnr")).unwrap();
    let tenants: Vec<uuid::Uuid> = (0..10)
        .map(|i| parse_uuid(&format!("{i:08x}-0000-4000-8000-000000000000")).unwrap())
        .collect();
    let users: Vec<uuid::Uuid> = (0..50)
        .map(|i| parse_uuid(&format!("00000000-0000-4000-8000-{i:012x}")).unwrap())
        .collect();
    let rows: Vec<Row> = (0..100_000)
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

    let evaluator = || {
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
    };
    // The same rule, written by hand: fence and `owner_id = current_user or role(admin)`.
    let by_hand = || {
        let mut allowed = 0;
        for row in &rows {
            let fence = matches!(row.get("tenant_id"), Value::Uuid(t) if Some(*t) == ctx.tenant);
            let owner = matches!(row.get("owner_id"), Value::Uuid(u) if Some(*u) == ctx.user);
            allowed += usize::from(fence && (owner || ctx.has_role("admin")));
        }
        black_box(allowed);
    };
    let (evaluator, _, ratio) = paired(11, evaluator, by_hand);
    let per_second = rows.len() as f64 / evaluator.as_secs_f64();
    println!("| evaluator: read decisions | {per_second:.0}/s | hand-written check of the same rule | {ratio:.2}x |");

    let mut source = String::from("tenancy:\n  mode: row_level\n");
    for i in 0..50 {
        source.push_str(&format!(
            "\nentity Thing{i}:\n  id: uuid pk\n  owner_id: uuid\n  title: str(200)\n  status: enum[a,b,c]\n  n: int\n  access:\n    create: authenticated\n    read: owner_id = current_user or role(admin) or status in ['a', 'b']\n    update: owner_id = current_user and n < 10\n    delete: owner_id = current_user and not (status = 'c')\n  forbid:\n    delete: role(guest)\n"
        ));
    }
    let parse = || {
        black_box(dnr_core::parse(black_box(&source)).unwrap());
    };
    for (target, name) in [
        (Target::Postgres, "postgres"),
        (Target::PostgresPlain, "postgres-plain"),
        (Target::Sqlite, "sqlite"),
    ] {
        let compile_all = || {
            let set = dnr_core::parse(black_box(&source)).unwrap();
            black_box(compile(&set, target).unwrap());
        };
        let (total, parse, ratio) = paired(11, compile_all, parse);
        println!(
            "| compile 50 entities ({name}) | {:.2} ms | parsing the same file ({:.2} ms) | {ratio:.2}x |",
            total.as_secs_f64() * 1e3,
            parse.as_secs_f64() * 1e3,
        );
    }

    signed_context();
}

/// First verification of a token: every call does the whole work (size,
/// base64url, JSON, key lookup, signature, claims); nothing is cached.
fn signed_context() {
    use dnr_core::signed::{verify, KeySet, SigningKey, VerifyOptions};

    const VERIFICATIONS: u32 = 200;
    let now = 1_700_000_000;
    let claims = serde_json::json!({
        "tid": "aaaaaaaa-0000-4000-8000-000000000000",
        "sub": "00000000-0000-4000-8000-0000000a11ce",
        "roles": ["admin", "staff"],
        "iat": now,
        "exp": now + 300,
    });
    let ed = SigningKey::eddsa("ed1", &[7; 32]).unwrap();
    let hs = SigningKey::hs256("hs1", &[42; 32]).unwrap();
    let keys = KeySet::parse(&format!("{},{}", ed.key_set_line(), hs.key_set_line())).unwrap();
    let options = VerifyOptions::default();
    let ed_token = ed.sign(&claims).unwrap();
    let hs_token = hs.sign(&claims).unwrap();
    let verifications = |token: &str| {
        for _ in 0..VERIFICATIONS {
            black_box(verify(black_box(token), &keys, &options, now).unwrap());
        }
    };
    let (ed_best, hs_best, ratio) =
        paired(11, || verifications(&ed_token), || verifications(&hs_token));
    let ed_us = ed_best.as_secs_f64() * 1e6 / f64::from(VERIFICATIONS);
    let hs_us = hs_best.as_secs_f64() * 1e6 / f64::from(VERIFICATIONS);
    println!(
        "| signed context: first verification, EdDSA token | {ed_us:.1} µs | issue target (100 µs) | {:.2}x |",
        ed_us / 100.0
    );
    println!(
        "| signed context: first verification, HS256 token | {hs_us:.1} µs | EdDSA token ({ed_us:.1} µs) | {:.2}x |",
        1.0 / ratio
    );
}
