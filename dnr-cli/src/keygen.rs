//! `dnr keygen`: a key for signed context, for development and tests.
//!
//! Prints the key set entry for the database setting (the Ed25519 public
//! key, or the HMAC secret itself) and, for EdDSA, the private signing key,
//! each labelled; with `--out FILE` the signing key goes to FILE (created
//! with mode 0600, never overwritten) and stdout gets the key set entry
//! alone. `dnr token --key FILE` reads either form. Randomness comes from
//! the operating system.

use std::io::Write as _;
use std::path::PathBuf;

use clap::ValueEnum;
use dnr_core::signed::SigningKey;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Alg {
    /// Ed25519: the database holds only the public key.
    Eddsa,
    /// HMAC-SHA-256: the database holds the secret itself.
    Hs256,
}

/// Generate a signed-context key (development and tests only).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The signature algorithm, pinned to the key.
    #[arg(long, value_enum, default_value = "eddsa")]
    alg: Alg,
    /// The key id tokens name in their `kid` header.
    #[arg(long, default_value = "k1", value_name = "NAME")]
    kid: String,
    /// Write the signing key to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<(), String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| format!("error: cannot read random bytes from the system: {e}"))?;
    let key = match args.alg {
        Alg::Eddsa => SigningKey::eddsa(&args.kid, &bytes),
        Alg::Hs256 => SigningKey::hs256(&args.kid, &bytes),
    };
    bytes.fill(0);
    let key = key.map_err(|e| format!("error: {e}"))?;
    let alg = key.algorithm();
    let kid = key.kid();

    let signing_text = match args.alg {
        Alg::Eddsa => format!(
            "# dnr signing key `{kid}` ({alg}), for development and tests only.\n\
             # Private: keep it secret. `dnr token --key FILE` reads this file.\n\
             {}\n",
            key.signing_key_line().as_str()
        ),
        Alg::Hs256 => format!(
            "# dnr signing key `{kid}` ({alg}), for development and tests only.\n\
             # Secret: the database's key setting holds this same entry.\n\
             {}\n",
            key.signing_key_line().as_str()
        ),
    };
    let setting_label = match args.alg {
        Alg::Eddsa => "# Key set entry for the database setting (the public key):",
        Alg::Hs256 => {
            "# Key set entry for the database setting (the secret itself: keep it secret):"
        }
    };

    match &args.out {
        Some(path) => {
            write_new_private(path, &signing_text)?;
            eprintln!(
                "wrote the signing key `{kid}` ({alg}) to `{}`; the key set entry follows",
                path.display()
            );
            crate::verb_args::print(&format!("{}\n", key.key_set_line()))
        }
        None => {
            let mut text = format!("{setting_label}\n{}\n", key.key_set_line());
            if matches!(args.alg, Alg::Eddsa) {
                text.push_str(&signing_text);
            }
            crate::verb_args::print(&text)
        }
    }
}

/// Creates `path` (refusing an existing file), readable by its owner only.
fn write_new_private(path: &std::path::Path, text: &str) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("error: cannot create `{}`: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("error: cannot write `{}`: {e}", path.display()))
}
