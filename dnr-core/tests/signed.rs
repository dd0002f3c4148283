//! Signed context: compact JWS verification, key text, claims and limits.
//! Every refusal is checked for its error and for not echoing the token or
//! key material.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use dnr_core::signed::{
    base64url, context_from_claims, eddsa_public_key, sign_eddsa, sign_hs256, verify, Algorithm,
    ClaimNames, KeySet, Part, SignedError, SigningKey, VerifyOptions, MAX_ROLES, MAX_TOKEN_BYTES,
};
use dnr_core::value::parse_uuid;
use proptest::prelude::*;
use serde_json::{json, Value as Json};

const NOW: i64 = 1_700_000_000;
const TENANT: &str = "aaaaaaaa-0000-4000-8000-000000000000";
const OTHER_TENANT: &str = "bbbbbbbb-0000-4000-8000-000000000000";
const USER: &str = "00000000-0000-4000-8000-0000000a11ce";
const ED_SEED: [u8; 32] = [7; 32];
const ED_SEED_2: [u8; 32] = [9; 32];
const HS_SECRET: &[u8] = b"an-hs256-test-secret-of-32-bytes!!";

fn claims() -> Json {
    json!({ "tid": TENANT, "sub": USER, "roles": ["admin", "staff"], "exp": NOW + 300, "iat": NOW })
}

fn ed_key() -> SigningKey {
    SigningKey::eddsa("ed1", &ED_SEED).unwrap()
}

fn hs_key() -> SigningKey {
    SigningKey::hs256("hs1", HS_SECRET).unwrap()
}

/// Both test keys, as a setting would hold them.
fn keys() -> KeySet {
    KeySet::parse(&format!(
        "{},\n{}",
        ed_key().key_set_line(),
        hs_key().key_set_line()
    ))
    .unwrap()
}

fn options() -> VerifyOptions {
    VerifyOptions::default()
}

/// Verifies and expects a refusal, checking that the message does not
/// contain the token, its signature or the HMAC secret.
fn refused(token: &str, keys: &KeySet, options: &VerifyOptions, now: i64) -> SignedError {
    let error = verify(token, keys, options, now).expect_err("the token was accepted");
    let message = error.to_string();
    assert!(!message.is_empty());
    if token.len() > 8 {
        assert!(!message.contains(token), "{message}");
    }
    if let Some(signature) = token.rsplit('.').next().filter(|s| s.len() > 8) {
        assert!(!message.contains(signature), "{message}");
    }
    assert!(!message.contains(&base64url(HS_SECRET)), "{message}");
    assert!(!message.contains(&base64url(&ED_SEED)), "{message}");
    error
}

fn refused_default(token: &str) -> SignedError {
    refused(token, &keys(), &options(), NOW)
}

/// Replaces one part of a token (0 header, 1 payload, 2 signature).
fn with_part(token: &str, index: usize, text: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[index] = text.to_string();
    parts.join(".")
}

#[test]
fn a_valid_eddsa_token_gives_the_context_and_expiry() {
    let token = ed_key().sign(&claims()).unwrap();
    let verified = verify(&token, &keys(), &options(), NOW).unwrap();
    assert_eq!(verified.context.tenant, Some(parse_uuid(TENANT).unwrap()));
    assert_eq!(verified.context.user, Some(parse_uuid(USER).unwrap()));
    assert_eq!(verified.context.roles_csv(), "admin,staff");
    assert_eq!(verified.expires_at, NOW + 300);
    assert_eq!(verified.kid, "ed1");
    assert!(verified.valid_at(NOW + 329, 30));
    assert!(!verified.valid_at(NOW + 330, 30));
}

#[test]
fn a_valid_hs256_token_gives_the_context() {
    let token = hs_key().sign(&claims()).unwrap();
    let verified = verify(&token, &keys(), &options(), NOW).unwrap();
    assert_eq!(verified.context.tenant, Some(parse_uuid(TENANT).unwrap()));
    assert_eq!(verified.kid, "hs1");
}

#[test]
fn the_free_signing_functions_match_the_keys() {
    let token = sign_eddsa(&claims(), Some("ed1"), &ED_SEED).unwrap();
    verify(&token, &keys(), &options(), NOW).unwrap();
    let token = sign_hs256(&claims(), Some("hs1"), HS_SECRET).unwrap();
    verify(&token, &keys(), &options(), NOW).unwrap();
    assert_eq!(
        ed_key().public_key(),
        Some(eddsa_public_key(&ED_SEED)),
        "the public key of a seed"
    );
}

#[test]
fn a_token_without_kid_is_accepted_only_by_a_single_key_set() {
    let single = KeySet::parse(&ed_key().key_set_line()).unwrap();
    let token = sign_eddsa(&claims(), None, &ED_SEED).unwrap();
    assert_eq!(verify(&token, &single, &options(), NOW).unwrap().kid, "ed1");
    assert_eq!(refused_default(&token), SignedError::MissingKid { keys: 2 });
}

#[test]
fn a_bad_signature_is_refused() {
    // Signed by another key under the same kid.
    let forged = SigningKey::eddsa("ed1", &ED_SEED_2)
        .unwrap()
        .sign(&claims())
        .unwrap();
    assert_eq!(
        refused_default(&forged),
        SignedError::BadSignature {
            kid: "ed1".into(),
            algorithm: Algorithm::EdDsa
        }
    );
    let forged = SigningKey::hs256("hs1", &[1; 32])
        .unwrap()
        .sign(&claims())
        .unwrap();
    let error = refused_default(&forged);
    assert_eq!(
        error.to_string(),
        "the token's signature does not verify with key `hs1` (HS256)"
    );
    // Signatures of the wrong length, and none at all.
    let token = ed_key().sign(&claims()).unwrap();
    for signature in ["", "AAAA", &base64url(&[0; 63]), &base64url(&[0; 65])] {
        assert!(matches!(
            refused_default(&with_part(&token, 2, signature)),
            SignedError::BadSignature { .. }
        ));
    }
}

#[test]
fn expiry_is_required_and_enforced_with_leeway() {
    let token = ed_key().sign(&claims()).unwrap();
    // Valid until exp + 30 s of leeway.
    verify(&token, &keys(), &options(), NOW + 329).unwrap();
    let error = refused(&token, &keys(), &options(), NOW + 330);
    assert_eq!(
        error,
        SignedError::Expired {
            exp: NOW + 300,
            now: NOW + 330,
            leeway: 30
        }
    );
    assert_eq!(
        error.to_string(),
        "the token expired at 1700000300 (now 1700000330, leeway 30 s)"
    );
    let strict = VerifyOptions {
        leeway_seconds: 0,
        ..options()
    };
    refused(&token, &keys(), &strict, NOW + 300);

    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    let token = ed_key().sign(&no_exp).unwrap();
    assert_eq!(refused_default(&token), SignedError::MissingExp);

    for exp in [json!("1700000300"), json!(null), json!(true), json!([1])] {
        let mut bad = claims();
        bad["exp"] = exp;
        let token = ed_key().sign(&bad).unwrap();
        assert_eq!(refused_default(&token), SignedError::NotNumericDate("exp"));
    }
    // A fractional exp counts down to the whole second.
    let mut fractional = claims();
    fractional["exp"] = json!(NOW as f64 + 0.9);
    let token = ed_key().sign(&fractional).unwrap();
    let strict = VerifyOptions {
        leeway_seconds: 0,
        ..options()
    };
    refused(&token, &keys(), &strict, NOW);
}

#[test]
fn a_token_not_yet_valid_is_refused() {
    let mut early = claims();
    early["nbf"] = json!(NOW + 60);
    let token = ed_key().sign(&early).unwrap();
    assert_eq!(
        refused_default(&token),
        SignedError::NotYetValid {
            nbf: NOW + 60,
            now: NOW,
            leeway: 30
        }
    );
    // Within the leeway it is accepted.
    verify(&token, &keys(), &options(), NOW + 30).unwrap();
}

#[test]
fn a_token_issued_in_the_future_is_refused() {
    let mut future = claims();
    future["iat"] = json!(NOW + 31);
    let token = ed_key().sign(&future).unwrap();
    assert!(matches!(
        refused_default(&token),
        SignedError::IssuedInFuture { .. }
    ));
    future["iat"] = json!(NOW + 30);
    let token = ed_key().sign(&future).unwrap();
    verify(&token, &keys(), &options(), NOW).unwrap();
}

#[test]
fn audience_is_checked_when_configured() {
    let api = VerifyOptions {
        audience: Some("api".into()),
        ..options()
    };
    let with_aud = |aud: Json| {
        let mut c = claims();
        c["aud"] = aud;
        ed_key().sign(&c).unwrap()
    };
    verify(&with_aud(json!("api")), &keys(), &api, NOW).unwrap();
    verify(&with_aud(json!(["web", "api"])), &keys(), &api, NOW).unwrap();
    let error = refused(&with_aud(json!("web")), &keys(), &api, NOW);
    assert_eq!(
        error.to_string(),
        "the token's audience does not include `api`"
    );
    assert!(matches!(
        refused(&with_aud(json!(["web"])), &keys(), &api, NOW),
        SignedError::WrongAudience { .. }
    ));
    assert_eq!(
        refused(&with_aud(json!(7)), &keys(), &api, NOW),
        SignedError::AudienceType
    );
    assert!(matches!(
        refused(&ed_key().sign(&claims()).unwrap(), &keys(), &api, NOW),
        SignedError::MissingAudience { .. }
    ));
    // Not configured: not checked.
    verify(&with_aud(json!("web")), &keys(), &options(), NOW).unwrap();
}

#[test]
fn issuer_is_checked_when_configured() {
    let issuer = VerifyOptions {
        issuer: Some("https://auth.example".into()),
        ..options()
    };
    let with_iss = |iss: Json| {
        let mut c = claims();
        c["iss"] = iss;
        hs_key().sign(&c).unwrap()
    };
    verify(
        &with_iss(json!("https://auth.example")),
        &keys(),
        &issuer,
        NOW,
    )
    .unwrap();
    let error = refused(
        &with_iss(json!("https://evil.example")),
        &keys(),
        &issuer,
        NOW,
    );
    assert_eq!(
        error.to_string(),
        "the token's issuer is not `https://auth.example`"
    );
    assert!(matches!(
        refused(&hs_key().sign(&claims()).unwrap(), &keys(), &issuer, NOW),
        SignedError::MissingIssuer { .. }
    ));
    assert_eq!(
        refused(&with_iss(json!(["x"])), &keys(), &issuer, NOW),
        SignedError::IssuerType
    );
}

#[test]
fn an_unknown_kid_is_refused() {
    let token = SigningKey::eddsa("ed9", &ED_SEED)
        .unwrap()
        .sign(&claims())
        .unwrap();
    let error = refused_default(&token);
    assert_eq!(
        error.to_string(),
        "the token's key id `ed9` is not a configured key"
    );
    // A kid that is not plain text is described, not shown.
    let odd = ed_key()
        .sign_with_header(
            &json!({ "alg": "EdDSA", "kid": "x".repeat(500) }),
            &claims(),
        )
        .unwrap();
    assert_eq!(
        refused_default(&odd).to_string(),
        "the token's key id is not a configured key"
    );
    let numeric = ed_key()
        .sign_with_header(&json!({ "alg": "EdDSA", "kid": 1 }), &claims())
        .unwrap();
    assert_eq!(refused_default(&numeric), SignedError::KidNotString);
}

#[test]
fn alg_none_is_refused() {
    let header = base64url(br#"{"alg":"none","kid":"ed1"}"#);
    let payload = base64url(claims().to_string().as_bytes());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}.{}", base64url(&[0; 64])),
    ] {
        assert_eq!(refused_default(&token), SignedError::AlgNone);
    }
    for none in ["None", "NONE"] {
        let header = base64url(format!(r#"{{"alg":"{none}"}}"#).as_bytes());
        let single = KeySet::parse(&hs_key().key_set_line()).unwrap();
        assert_eq!(
            refused(&format!("{header}.{payload}."), &single, &options(), NOW),
            SignedError::AlgNone
        );
    }
    let missing = base64url(br#"{"kid":"ed1"}"#);
    assert_eq!(
        refused_default(&format!("{missing}.{payload}.")),
        SignedError::MissingAlg
    );
}

#[test]
fn hs256_keyed_with_the_ed25519_public_key_is_refused() {
    // The classic confusion: the attacker knows the public key and uses it
    // as an HMAC secret, claiming HS256 under the EdDSA key's kid.
    let public = eddsa_public_key(&ED_SEED);
    let forger = SigningKey::hs256("ed1", &public).unwrap();
    let token = forger.sign(&claims()).unwrap();
    let error = refused_default(&token);
    assert_eq!(
        error,
        SignedError::AlgMismatch {
            alg: Some("HS256".into()),
            kid: "ed1".into(),
            pinned: Algorithm::EdDsa
        }
    );
    assert_eq!(
        error.to_string(),
        "the token's `alg` `HS256` does not match key `ed1`, which is pinned to `EdDSA`"
    );
    // Also without kid against a set of that one key, and with the public
    // key's text (as the setting holds it) as the secret.
    let single = KeySet::parse(&ed_key().key_set_line()).unwrap();
    let token = sign_hs256(&claims(), None, &public).unwrap();
    assert!(matches!(
        refused(&token, &single, &options(), NOW),
        SignedError::AlgMismatch { .. }
    ));
    let text = ed_key().key_set_line();
    let token = sign_hs256(&claims(), Some("ed1"), text.as_bytes()).unwrap();
    assert!(matches!(
        refused_default(&token),
        SignedError::AlgMismatch { .. }
    ));
}

#[test]
fn an_alg_other_than_the_pinned_one_is_refused() {
    for alg in ["HS512", "EdDSA", "ES256", "RS256", "hs256", "Ed25519"] {
        let token = hs_key()
            .sign_with_header(&json!({ "alg": alg, "kid": "hs1" }), &claims())
            .unwrap();
        assert_eq!(
            refused_default(&token),
            SignedError::AlgMismatch {
                alg: Some(alg.into()),
                kid: "hs1".into(),
                pinned: Algorithm::Hs256
            },
            "{alg}"
        );
    }
    let token = ed_key()
        .sign_with_header(&json!({ "alg": ["EdDSA"], "kid": "ed1" }), &claims())
        .unwrap();
    assert!(matches!(
        refused_default(&token),
        SignedError::AlgMismatch { alg: None, .. }
    ));
}

#[test]
fn a_tampered_payload_is_refused() {
    for key in [ed_key(), hs_key()] {
        let token = key.sign(&claims()).unwrap();
        let mut other = claims();
        other["tid"] = json!(OTHER_TENANT);
        let tampered = with_part(&token, 1, &base64url(other.to_string().as_bytes()));
        assert!(matches!(
            refused_default(&tampered),
            SignedError::BadSignature { .. }
        ));
        // The header too.
        let header = base64url(
            json!({ "alg": key.algorithm().jws_name(), "kid": key.kid(), "x": 1 })
                .to_string()
                .as_bytes(),
        );
        assert!(matches!(
            refused_default(&with_part(&token, 0, &header)),
            SignedError::BadSignature { .. }
        ));
    }
}

#[test]
fn crit_headers_and_duplicate_members_are_refused() {
    let token = ed_key()
        .sign_with_header(
            &json!({ "alg": "EdDSA", "kid": "ed1", "crit": ["exp"] }),
            &claims(),
        )
        .unwrap();
    assert_eq!(refused_default(&token), SignedError::CriticalHeader);

    // A payload naming `tid` twice: two readers might disagree on the tenant.
    let payload = format!(
        r#"{{"tid":"{TENANT}","exp":{},"tid":"{OTHER_TENANT}"}}"#,
        NOW + 300
    );
    let header = base64url(br#"{"alg":"HS256","kid":"hs1"}"#);
    let token = sign_raw_hs256(&header, &base64url(payload.as_bytes()));
    let error = refused_default(&token);
    assert_eq!(
        error,
        SignedError::DuplicateMember {
            part: Part::Payload,
            name: Some("tid".into())
        }
    );
    assert_eq!(
        error.to_string(),
        "the token's payload has the member `tid` more than once"
    );
    let header = base64url(br#"{"alg":"HS256","kid":"hs1","alg":"HS256"}"#);
    let token = sign_raw_hs256(&header, &base64url(claims().to_string().as_bytes()));
    assert!(matches!(
        refused_default(&token),
        SignedError::DuplicateMember {
            part: Part::Header,
            ..
        }
    ));
}

/// An HS256 token over exactly the given base64url header and payload.
fn sign_raw_hs256(header: &str, payload: &str) -> String {
    use hmac::Mac;
    let input = format!("{header}.{payload}");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(HS_SECRET).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", base64url(&mac.finalize().into_bytes()))
}

#[test]
fn malformed_base64_is_refused() {
    let token = ed_key().sign(&claims()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    // Padding, the standard alphabet, whitespace, other bytes.
    for (index, bad) in [
        (2, format!("{}==", parts[2])),
        (2, format!("{}=", parts[2])),
        (1, format!("{}=", parts[1])),
        (0, parts[0].replace('e', "+")),
        (1, format!("{}/", &parts[1][..parts[1].len() - 1])),
        (2, format!(" {}", parts[2])),
        (2, format!("{}\n", parts[2])),
        (0, format!("{}*", parts[0])),
        (1, "A".into()),
    ] {
        let tampered = with_part(&token, index, &bad);
        let error = refused_default(&tampered);
        let part = [Part::Header, Part::Payload, Part::Signature][index];
        assert_eq!(error, SignedError::NotBase64(part), "{bad}");
    }
    // Standard base64 with padding, as some encoders write it.
    assert_eq!(
        refused_default(&format!("{}=.{}.{}", parts[0], parts[1], parts[2])),
        SignedError::NotBase64(Part::Header)
    );
    // Not three parts.
    for (text, parts) in [("abc", 1), ("a.b", 2), ("a.b.c.d", 4), ("a.b.c.d.e", 5)] {
        assert_eq!(refused_default(text), SignedError::NotCompact { parts });
    }
    // Valid base64 that is not a JSON object.
    let header = base64url(b"[1,2]");
    assert!(matches!(
        refused_default(&with_part(&token, 0, &header)),
        SignedError::NotJsonObject {
            part: Part::Header,
            ..
        }
    ));
}

/// Replaces the last character of `text` by the one whose 6-bit value
/// differs in the lowest bit: for a length that leaves trailing bits, the
/// decoded bytes are the same and only the (refused) encoding differs.
fn flip_trailing_bit(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = *text.as_bytes().last().unwrap();
    let value = ALPHABET.iter().position(|&c| c == last).unwrap();
    let mut out = text[..text.len() - 1].to_string();
    out.push(ALPHABET[value ^ 1] as char);
    out
}

#[test]
fn non_canonical_base64_is_refused_so_one_token_has_one_text() {
    // A 64-byte Ed25519 signature is 86 characters: 4 trailing bits. A
    // lenient decoder would read the same signature from both texts.
    for key in [ed_key(), hs_key()] {
        let token = key.sign(&claims()).unwrap();
        let signature = token.rsplit('.').next().unwrap();
        assert!(signature.len() % 4 != 0);
        let flipped = flip_trailing_bit(signature);
        assert_ne!(flipped, signature);
        let lenient = base64::engine::GeneralPurpose::new(
            &base64::alphabet::URL_SAFE,
            base64::engine::general_purpose::NO_PAD.with_decode_allow_trailing_bits(true),
        );
        use base64::Engine as _;
        assert_eq!(
            lenient.decode(&flipped).unwrap(),
            lenient.decode(signature).unwrap(),
            "the flip only touched trailing bits"
        );
        assert_eq!(
            refused_default(&with_part(&token, 2, &flipped)),
            SignedError::NotBase64(Part::Signature)
        );
    }
}

#[test]
fn oversized_tokens_and_headers_are_refused() {
    let mut big = claims();
    big["pad"] = json!("x".repeat(MAX_TOKEN_BYTES));
    let token = ed_key().sign(&big).unwrap();
    assert!(token.len() > MAX_TOKEN_BYTES);
    let error = refused_default(&token);
    assert_eq!(error, SignedError::TokenTooLarge { bytes: token.len() });
    assert!(error.to_string().ends_with("the limit is 8192 bytes"));
    // Just under the limit is fine.
    let mut fits = claims();
    fits["pad"] = json!("");
    let base = ed_key().sign(&fits).unwrap().len();
    fits["pad"] = json!("x".repeat((MAX_TOKEN_BYTES - base) * 3 / 4));
    let token = ed_key().sign(&fits).unwrap();
    assert!(token.len() <= MAX_TOKEN_BYTES);
    verify(&token, &keys(), &options(), NOW).unwrap();
    // A header over 1 KiB, in a token under 8 KiB.
    let token = ed_key()
        .sign_with_header(
            &json!({ "alg": "EdDSA", "kid": "ed1", "pad": "x".repeat(1100) }),
            &claims(),
        )
        .unwrap();
    assert!(matches!(
        refused_default(&token),
        SignedError::PartTooLarge {
            part: Part::Header,
            limit: 1024,
            ..
        }
    ));
}

#[test]
fn tenant_and_user_claims_must_be_uuids() {
    for (claim, value) in [
        ("tid", json!("acme")),
        ("tid", json!("")),
        ("sub", json!("not-a-uuid")),
    ] {
        let mut bad = claims();
        bad[claim] = value.clone();
        let token = ed_key().sign(&bad).unwrap();
        let error = refused_default(&token);
        assert!(
            matches!(&error, SignedError::ClaimNotUuid { claim: c, .. } if c == claim),
            "{error}"
        );
    }
    let mut bad = claims();
    bad["tid"] = json!("acme");
    let error = refused_default(&ed_key().sign(&bad).unwrap());
    assert_eq!(error.to_string(), "claim `tid` `acme` is not a uuid");
    bad["tid"] = json!(42);
    assert_eq!(
        refused_default(&ed_key().sign(&bad).unwrap()).to_string(),
        "claim `tid` must be a uuid string"
    );
    // Long values are described, not echoed.
    bad["tid"] = json!("z".repeat(2000));
    assert_eq!(
        refused_default(&ed_key().sign(&bad).unwrap()).to_string(),
        "claim `tid` is not a uuid"
    );
    // Absent or null: unset.
    let token = ed_key()
        .sign(&json!({ "exp": NOW + 10, "tid": null }))
        .unwrap();
    let verified = verify(&token, &keys(), &options(), NOW).unwrap();
    assert_eq!(verified.context, Default::default());
}

#[test]
fn roles_must_be_an_array_of_role_names() {
    for roles in [
        json!("admin"),
        json!("admin,staff"),
        json!({ "admin": true }),
    ] {
        let mut bad = claims();
        bad["roles"] = roles;
        let error = refused_default(&ed_key().sign(&bad).unwrap());
        assert_eq!(
            error.to_string(),
            "claim `roles` must be an array of strings"
        );
    }
    let mut bad = claims();
    bad["roles"] = json!(["admin", 3]);
    assert!(matches!(
        refused_default(&ed_key().sign(&bad).unwrap()),
        SignedError::ClaimType { .. }
    ));
    bad["roles"] = json!(["admin", "drop table"]);
    assert_eq!(
        refused_default(&ed_key().sign(&bad).unwrap()).to_string(),
        "claim `roles`: invalid role name `drop table`; use letters, digits, `_`, `-`, `.` or `:`"
    );
    let many: Vec<String> = (0..=MAX_ROLES).map(|i| format!("r{i}")).collect();
    bad["roles"] = json!(many);
    assert_eq!(
        refused_default(&ed_key().sign(&bad).unwrap()),
        SignedError::TooManyRoles {
            claim: "roles".into(),
            count: MAX_ROLES + 1
        }
    );
    bad["roles"] = json!(many[..MAX_ROLES]);
    verify(&ed_key().sign(&bad).unwrap(), &keys(), &options(), NOW).unwrap();
}

#[test]
fn claim_names_are_configurable() {
    let names = ClaimNames {
        tenant: "org_id".into(),
        user: "uid".into(),
        roles: "https://example.com/roles".into(),
    };
    let custom = VerifyOptions {
        claims: names.clone(),
        ..options()
    };
    let token = hs_key()
        .sign(&json!({
            "org_id": TENANT, "uid": USER, "https://example.com/roles": ["viewer"],
            "tid": OTHER_TENANT, "sub": "someone@example.com", "exp": NOW + 60
        }))
        .unwrap();
    let verified = verify(&token, &keys(), &custom, NOW).unwrap();
    assert_eq!(verified.context.tenant, Some(parse_uuid(TENANT).unwrap()));
    assert_eq!(verified.context.user, Some(parse_uuid(USER).unwrap()));
    assert!(verified.context.has_role("viewer"));
    // The mapping alone, as hosts holding claims may use it.
    let claims = json!({ "org_id": TENANT });
    let context = context_from_claims(claims.as_object().unwrap(), &names).unwrap();
    assert!(context.user.is_none());
}

#[test]
fn key_rotation_accepts_both_kids() {
    let old = SigningKey::eddsa("2024-01", &ED_SEED).unwrap();
    let new = SigningKey::eddsa("2024-02", &ED_SEED_2).unwrap();
    let set = KeySet::parse(&format!(
        "# rotation: old and new\n{}\n{}\n",
        old.key_set_line(),
        new.key_set_line()
    ))
    .unwrap();
    assert_eq!(set.kids().collect::<Vec<_>>(), ["2024-01", "2024-02"]);
    for key in [&old, &new] {
        let verified = verify(&key.sign(&claims()).unwrap(), &set, &options(), NOW).unwrap();
        assert_eq!(verified.kid, key.kid());
    }
    // A token of the new key presented under the old kid fails.
    let swapped = new
        .sign_with_header(&json!({ "alg": "EdDSA", "kid": "2024-01" }), &claims())
        .unwrap();
    assert!(matches!(
        refused(&swapped, &set, &options(), NOW),
        SignedError::BadSignature { .. }
    ));
    // Once the old key is removed, its tokens are refused.
    let only_new = KeySet::parse(&new.key_set_line()).unwrap();
    assert!(matches!(
        refused(&old.sign(&claims()).unwrap(), &only_new, &options(), NOW),
        SignedError::UnknownKid { .. }
    ));
}

#[test]
fn an_empty_key_set_refuses_everything() {
    let token = ed_key().sign(&claims()).unwrap();
    let empty = KeySet::parse(" \n# nothing yet\n , ").unwrap();
    assert!(empty.is_empty());
    assert_eq!(
        refused(&token, &empty, &options(), NOW),
        SignedError::NoKeys
    );
}

#[test]
fn key_text_is_parsed_with_pinned_algorithms() {
    let set = keys();
    assert_eq!(set.len(), 2);
    assert_eq!(set.algorithm("ed1"), Some(Algorithm::EdDsa));
    assert_eq!(set.algorithm("hs1"), Some(Algorithm::Hs256));
    // Whitespace around entries and fields, upper-case algorithm names.
    let spaced = format!(
        "  ed1 : EdDSA : {}  ,  ",
        base64url(&eddsa_public_key(&ED_SEED))
    );
    assert_eq!(
        KeySet::parse(&spaced).unwrap().algorithm("ed1"),
        Some(Algorithm::EdDsa)
    );
    // Debug shows kids and algorithms, never material.
    let debug = format!("{set:?}");
    assert!(debug.contains("ed1") && debug.contains("Hs256"), "{debug}");
    assert!(!debug.contains(&base64url(HS_SECRET)), "{debug}");
    assert!(!debug.contains("an-hs256"), "{debug}");
    let debug = format!("{:?}", hs_key());
    assert!(!debug.contains(&base64url(HS_SECRET)) && !debug.contains("an-hs256"));
}

#[test]
fn key_text_errors_name_the_key_and_never_the_secret() {
    let short_secret = base64url(b"only-twenty-bytes-ok");
    let public = base64url(&eddsa_public_key(&ED_SEED));
    let seed = base64url(&ED_SEED);
    let cases: Vec<(String, &str)> = vec![
        (
            format!("k1:hs256:{short_secret}"),
            "the secret of key `k1` is shorter than 32 bytes",
        ),
        (
            format!("k1:hs256:{}", base64url(&[1; 2000])),
            "the secret of key `k1` is longer than 1024 bytes",
        ),
        (
            format!("k1:hs256:{}=", base64url(HS_SECRET)),
            "the key of `k1` is not base64url without padding",
        ),
        (
            format!("k1:eddsa:{}", &public[..40]),
            "the public key of `k1` is 30 bytes; an Ed25519 public key is 32 bytes",
        ),
        (
            format!("k1:eddsa:{}", base64url(&[0; 32])),
            "the public key of `k1` is not a valid Ed25519 public key",
        ),
        (
            format!("k1:rs256:{public}"),
            "key `k1`: unknown algorithm `rs256`; expected `eddsa` or `hs256`",
        ),
        (
            format!("k1:{seed}:hs256"),
            "key `k1`: unknown algorithm; expected `eddsa` or `hs256`",
        ),
        (
            format!("k1:eddsa-private:{seed}"),
            "key `k1` is a private signing key (`eddsa-private`); the key set takes the public key (`eddsa`), as `dnr keygen` prints it",
        ),
        (
            format!("k1:eddsa:{public}\nk1:eddsa:{public}"),
            "key id `k1` appears more than once",
        ),
        (
            format!("k1:eddsa:{public}, {seed}"),
            "key entry 2: expected `kid:algorithm:base64url-key`",
        ),
        (
            format!("k/1:hs256:{}", base64url(HS_SECRET)),
            "key entry 1: invalid key id; use 1 to 64 letters, digits, `_`, `-` or `.`",
        ),
        (
            format!("k 1:hs256:{}", base64url(HS_SECRET)),
            "key entry 1: invalid key id; use 1 to 64 letters, digits, `_`, `-` or `.`",
        ),
    ];
    for (text, expected) in cases {
        let message = KeySet::parse(&text).unwrap_err().to_string();
        assert_eq!(message, expected);
        for secret in [
            short_secret.as_str(),
            seed.as_str(),
            &base64url(HS_SECRET),
            &public[..40],
        ] {
            assert!(!message.contains(secret), "{message}");
        }
    }
    let too_many: Vec<String> = (0..65)
        .map(|i| format!("k{i}:hs256:{}", base64url(HS_SECRET)))
        .collect();
    assert_eq!(
        KeySet::parse(&too_many.join(",")).unwrap_err(),
        SignedError::TooManyKeys
    );
}

#[test]
fn signing_key_text_round_trips_and_refuses_public_keys() {
    let text = format!(
        "# dev keys\n{}\n{}\n",
        ed_key().signing_key_line().as_str(),
        hs_key().signing_key_line().as_str()
    );
    let keys = SigningKey::parse_all(&text).unwrap();
    assert_eq!(keys.len(), 2);
    let set = self::keys();
    for key in &keys {
        verify(&key.sign(&claims()).unwrap(), &set, &options(), NOW).unwrap();
    }
    // Public key entries are skipped: `dnr keygen` prints both.
    assert!(SigningKey::parse_all(&ed_key().key_set_line())
        .unwrap()
        .is_empty());
    let error = SigningKey::parse_all("ed1:es256:AAAA").unwrap_err();
    assert_eq!(
        error.to_string(),
        "key `ed1`: unknown algorithm `es256`; expected `eddsa-private` or `hs256`"
    );
    let error = SigningKey::parse_all("ed1:eddsa-private:AAAA").unwrap_err();
    assert_eq!(
        error.to_string(),
        "the private key of `ed1` is not 32 bytes (an Ed25519 seed)"
    );
    assert_eq!(
        SigningKey::hs256("bad kid", HS_SECRET).unwrap_err(),
        SignedError::InvalidSigningKid
    );
    assert_eq!(
        ed_key().sign(&json!([1])).unwrap_err(),
        SignedError::ClaimsNotObject
    );
}

/// Flips bit `bit` of the token's text and expects a refusal (a flip that
/// makes the bytes invalid UTF-8 cannot be passed as text at all).
fn flipped_is_refused(token: &str, keys: &KeySet, bit: usize) -> Result<(), String> {
    let mut bytes = token.as_bytes().to_vec();
    bytes[bit / 8] ^= 1 << (bit % 8);
    let Ok(text) = String::from_utf8(bytes) else {
        return Ok(());
    };
    match verify(&text, keys, &VerifyOptions::default(), NOW) {
        Ok(_) => Err(format!("bit {bit} flipped, still accepted: {text}")),
        Err(_) => Ok(()),
    }
}

#[test]
fn every_single_bit_flip_of_a_token_is_refused() {
    let keys = keys();
    for key in [ed_key(), hs_key()] {
        let token = key.sign(&claims()).unwrap();
        for bit in 0..token.len() * 8 {
            flipped_is_refused(&token, &keys, bit).unwrap();
        }
    }
}

fn uuid_text() -> impl Strategy<Value = String> {
    any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).hyphenated().to_string())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any single-bit change anywhere in a valid token's text is refused,
    /// for both algorithms, with and without `kid`.
    #[test]
    fn any_single_bit_flip_is_refused(
        tenant in uuid_text(),
        roles in proptest::collection::vec("[a-z]{1,8}", 0..4),
        ttl in 1i64..100_000,
        eddsa in any::<bool>(),
        with_kid in any::<bool>(),
        bit in any::<prop::sample::Index>(),
    ) {
        let claims = json!({ "tid": tenant, "roles": roles, "exp": NOW + ttl });
        let (token, keys) = match (eddsa, with_kid) {
            (true, true) => (sign_eddsa(&claims, Some("ed1"), &ED_SEED).unwrap(), keys()),
            (false, true) => (sign_hs256(&claims, Some("hs1"), HS_SECRET).unwrap(), keys()),
            (true, false) => (
                sign_eddsa(&claims, None, &ED_SEED).unwrap(),
                KeySet::parse(&ed_key().key_set_line()).unwrap(),
            ),
            (false, false) => (
                sign_hs256(&claims, None, HS_SECRET).unwrap(),
                KeySet::parse(&hs_key().key_set_line()).unwrap(),
            ),
        };
        prop_assert!(verify(&token, &keys, &VerifyOptions::default(), NOW).is_ok());
        let bit = bit.index(token.len() * 8);
        prop_assert_eq!(flipped_is_refused(&token, &keys, bit), Ok(()));
    }
}
