//! `dnr token`: mint a signed-context token (a compact JWS), for
//! development and tests.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use dnr_core::context::parse_role_list;
use dnr_core::signed::SigningKey;
use dnr_core::value::parse_uuid;
use serde_json::{json, Map, Value};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The signing key file (`dnr keygen` output or its --out file).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Which key of FILE signs; may be left out when FILE holds one key.
    #[arg(long, value_name = "K")]
    kid: Option<String>,
    /// The tenant's uuid (claim `tid`).
    #[arg(long, value_name = "UUID")]
    tenant: String,
    /// The user's uuid (claim `sub`).
    #[arg(long, value_name = "UUID")]
    user: Option<String>,
    /// Roles, comma-separated (claim `roles`).
    #[arg(long, value_name = "a,b")]
    roles: Option<String>,
    /// Seconds until the token expires (claim `exp`).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(u32).range(1..))]
    ttl: u32,
    /// The audience (claim `aud`).
    #[arg(long, value_name = "X")]
    aud: Option<String>,
    /// The issuer (claim `iss`).
    #[arg(long, value_name = "X")]
    iss: Option<String>,
}

pub fn run(args: Args) -> Result<(), String> {
    let tenant = parse_uuid(&args.tenant).map_err(|e| format!("error: --tenant: {e}"))?;
    let user = args
        .user
        .as_deref()
        .map(parse_uuid)
        .transpose()
        .map_err(|e| format!("error: --user: {e}"))?;
    let roles = parse_role_list(args.roles.as_deref().unwrap_or(""))
        .map_err(|e| format!("error: --roles: {e}"))?;

    let file = args.key.display();
    let text = std::fs::read_to_string(&args.key)
        .map_err(|e| format!("error: cannot read `{file}`: {e}"))?;
    let keys = SigningKey::parse_all(&text).map_err(|e| format!("error: `{file}`: {e}"))?;
    let key = match (&args.kid, keys.as_slice()) {
        (_, []) => {
            return Err(format!(
                "error: `{file}` holds no signing key (`kid:eddsa-private:…` or `kid:hs256:…`); \
                 `dnr keygen` writes one"
            ))
        }
        (None, [only]) => only,
        (None, _) => {
            return Err(format!(
                "error: `{file}` holds {} signing keys; choose one with --kid",
                keys.len()
            ))
        }
        (Some(kid), keys) => keys.iter().find(|k| k.kid() == kid).ok_or_else(|| {
            let known: Vec<&str> = keys.iter().map(SigningKey::kid).collect();
            format!(
                "error: `{file}` has no signing key `{kid}`; it has {}",
                known.join(", ")
            )
        })?,
    };

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "error: the system clock is before 1970".to_string())?
        .as_secs();
    let mut claims = Map::new();
    claims.insert("tid".into(), json!(tenant.hyphenated().to_string()));
    if let Some(user) = user {
        claims.insert("sub".into(), json!(user.hyphenated().to_string()));
    }
    if !roles.is_empty() {
        claims.insert("roles".into(), json!(roles));
    }
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + u64::from(args.ttl)));
    if let Some(aud) = args.aud {
        claims.insert("aud".into(), json!(aud));
    }
    if let Some(iss) = args.iss {
        claims.insert("iss".into(), json!(iss));
    }
    let token = key
        .sign(&Value::Object(claims))
        .map_err(|e| format!("error: {e}"))?;
    crate::verb_args::print(&format!("{token}\n"))
}
