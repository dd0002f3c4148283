//! `dnr keygen` and `dnr token` as a developer runs them: keys and tokens
//! minted by the command verify with dnr-core's signed context.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use dnr_core::signed::{verify, KeySet, SignedError, VerifyOptions};
use dnr_core::value::parse_uuid;

const TENANT: &str = "aaaaaaaa-0000-4000-8000-000000000000";
const USER: &str = "00000000-0000-4000-8000-0000000a11ce";

fn dnr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dnr"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The output's lines that are not `#` labels.
fn entries(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
}

fn mint(args: &[&str]) -> String {
    let out = dnr(&[&["token"], args].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout);
    assert_eq!(token.lines().count(), 1, "{token}");
    token.trim_end().to_string()
}

#[test]
fn an_eddsa_key_and_token_verify_with_the_core() {
    let dir = tempfile::tempdir().unwrap();
    let out = dnr(&["keygen", "--kid", "dev-1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("# Key set entry for the database setting (the public key):"));
    assert!(stdout.contains("development and tests only"));
    let lines = entries(&stdout);
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("dev-1:eddsa:"), "{stdout}");
    assert!(lines[1].starts_with("dev-1:eddsa-private:"), "{stdout}");

    // The database's key set takes the public entry; the private one is refused.
    let keys = KeySet::parse(lines[0]).unwrap();
    assert!(matches!(
        KeySet::parse(lines[1]),
        Err(SignedError::PrivateKeyInKeySet(_))
    ));

    // The whole output is a key file for `dnr token`.
    let file = dir.path().join("dev.key");
    std::fs::write(&file, &stdout).unwrap();
    let token = mint(&[
        "--key",
        file.to_str().unwrap(),
        "--kid",
        "dev-1",
        "--tenant",
        TENANT,
        "--user",
        USER,
        "--roles",
        "admin,staff",
        "--ttl",
        "120",
    ]);
    let verified = verify(&token, &keys, &VerifyOptions::default(), now()).unwrap();
    assert_eq!(verified.kid, "dev-1");
    assert_eq!(verified.context.tenant, Some(parse_uuid(TENANT).unwrap()));
    assert_eq!(verified.context.user, Some(parse_uuid(USER).unwrap()));
    assert_eq!(verified.context.roles_csv(), "admin,staff");
    assert!((verified.expires_at - now() - 120).abs() <= 5);
    // Expired two minutes and a leeway later.
    assert!(verify(&token, &keys, &VerifyOptions::default(), now() + 151).is_err());
}

#[test]
fn an_hs256_key_written_to_a_file_mints_tokens_with_an_audience() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hs.key");
    let out = dnr(&[
        "keygen",
        "--alg",
        "hs256",
        "--kid",
        "svc",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // With --out, stdout is the key set entry alone.
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("svc:hs256:"), "{stdout}");
    let keys = KeySet::parse(&stdout).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains(stdout.trim_end()));

    // --kid may be left out: the file holds one key.
    let token = mint(&[
        "--key",
        file.to_str().unwrap(),
        "--tenant",
        TENANT,
        "--aud",
        "api",
    ]);
    let api = VerifyOptions {
        audience: Some("api".into()),
        ..VerifyOptions::default()
    };
    let verified = verify(&token, &keys, &api, now()).unwrap();
    assert_eq!(verified.context.tenant, Some(parse_uuid(TENANT).unwrap()));
    assert!(verified.context.user.is_none());
    let web = VerifyOptions {
        audience: Some("web".into()),
        ..VerifyOptions::default()
    };
    assert!(matches!(
        verify(&token, &keys, &web, now()),
        Err(SignedError::WrongAudience { .. })
    ));

    // The file is never overwritten.
    let again = dnr(&["keygen", "--out", file.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("cannot create"));
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains(stdout.trim_end()));
}

#[test]
fn keys_are_random() {
    let a = text(&dnr(&["keygen", "--alg", "hs256"]).stdout);
    let b = text(&dnr(&["keygen", "--alg", "hs256"]).stdout);
    assert!(entries(&a)[0].starts_with("k1:hs256:"));
    assert_ne!(entries(&a), entries(&b));
}

#[test]
fn a_token_from_another_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("mine.key");
    let theirs = dir.path().join("theirs.key");
    let keys = text(&dnr(&["keygen", "--kid", "k1", "--out", mine.to_str().unwrap()]).stdout);
    let keys = KeySet::parse(&keys).unwrap();
    assert!(
        dnr(&["keygen", "--kid", "k1", "--out", theirs.to_str().unwrap()])
            .status
            .success()
    );
    let token = mint(&["--key", theirs.to_str().unwrap(), "--tenant", TENANT]);
    assert!(matches!(
        verify(&token, &keys, &VerifyOptions::default(), now()),
        Err(SignedError::BadSignature { .. })
    ));
}

fn fails(args: &[&str], needle: &str) -> String {
    let out = dnr(args);
    assert!(!out.status.success(), "{args:?} succeeded");
    let stderr = text(&out.stderr);
    assert!(stderr.contains(needle), "{stderr}");
    stderr
}

#[test]
fn token_errors_are_clear_and_do_not_show_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k.key");
    let out = dnr(&["keygen", "--alg", "hs256", "--kid", "a"]);
    let line = text(&out.stdout);
    let secret = entries(&line)[0].rsplit(':').next().unwrap().to_string();
    let key = file.to_str().unwrap();
    std::fs::write(&file, &line).unwrap();

    fails(
        &["token", "--key", key, "--tenant", "acme"],
        "error: --tenant: `acme` is not a valid uuid",
    );
    fails(
        &["token", "--key", key, "--tenant", TENANT, "--user", "bob"],
        "error: --user:",
    );
    fails(
        &["token", "--key", key, "--tenant", TENANT, "--roles", "a b"],
        "error: --roles: invalid role name `a b`",
    );
    let stderr = fails(
        &["token", "--key", key, "--kid", "b", "--tenant", TENANT],
        "has no signing key `b`; it has a",
    );
    assert!(!stderr.contains(&secret));
    fails(
        &["token", "--key", key, "--tenant", TENANT, "--ttl", "0"],
        "--ttl",
    );
    fails(&["token", "--tenant", TENANT], "--key <FILE>");
    fails(
        &["token", "--key", "does/not/exist.key", "--tenant", TENANT],
        "cannot read `does/not/exist.key`",
    );

    // A file with a public key only, and one with a short secret.
    let public = dir.path().join("public.key");
    let eddsa = text(&dnr(&["keygen", "--kid", "p"]).stdout);
    std::fs::write(&public, entries(&eddsa)[0]).unwrap();
    fails(
        &[
            "token",
            "--key",
            public.to_str().unwrap(),
            "--tenant",
            TENANT,
        ],
        "holds no signing key",
    );
    let short = dir.path().join("short.key");
    std::fs::write(&short, "s:hs256:c2hvcnQtc2VjcmV0").unwrap();
    let stderr = fails(
        &[
            "token",
            "--key",
            short.to_str().unwrap(),
            "--tenant",
            TENANT,
        ],
        "the secret of key `s` is shorter than 32 bytes",
    );
    assert!(!stderr.contains("c2hvcnQtc2VjcmV0"));
    // Two keys need --kid.
    let two = dir.path().join("two.key");
    let other = text(&dnr(&["keygen", "--alg", "hs256", "--kid", "b"]).stdout);
    std::fs::write(&two, format!("{line}\n{other}")).unwrap();
    fails(
        &["token", "--key", two.to_str().unwrap(), "--tenant", TENANT],
        "holds 2 signing keys; choose one with --kid",
    );
}

#[test]
fn keygen_refuses_bad_arguments_and_documents_itself() {
    fails(&["keygen", "--alg", "rs256"], "invalid value 'rs256'");
    fails(&["keygen", "--kid", "a b"], "invalid key id");
    let help = dnr(&["keygen", "--help"]);
    assert!(help.status.success());
    assert!(text(&help.stdout).contains("development and tests only"));
    let help = dnr(&["token", "--help"]);
    assert!(help.status.success());
    assert!(text(&help.stdout).contains("development and tests only"));
    let usage = dnr(&["help"]);
    assert!(text(&usage.stdout).contains("keygen  "));
    assert!(Path::new(env!("CARGO_BIN_EXE_dnr")).exists());
}
