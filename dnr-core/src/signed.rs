//! Signed context: verification of compact JWS tokens (`EdDSA` and `HS256`)
//! whose claims become the [`TenantContext`], so that SQL reaching the
//! database cannot choose its tenant.
//!
//! Pure Rust and free of OS randomness: it builds for wasm32 as it does
//! natively. The caller passes the time (`now`, unix seconds), so that hosts
//! without a clock and tests control it. Key generation belongs to the
//! `dnr` command; signing is here for development and tests.
//!
//! Rules (see `docs/signed-context.md`):
//! - keys are found by `kid`, and each key's algorithm is pinned when it is
//!   configured: the header's `alg` must equal it and never chooses it, so
//!   `alg: none` and algorithm confusion (an `HS256` token keyed with an
//!   Ed25519 public key) are refused;
//! - a token without `kid` is accepted only when the set holds exactly one
//!   key (there is then nothing to choose, and single-key deployments need
//!   no `kid`); with two or more keys it is refused rather than tried
//!   against each;
//! - base64url must be unpadded and canonical (no stray trailing bits), so
//!   every token text has exactly one decoding and any change to the text
//!   of a valid token is refused;
//! - Ed25519 signatures are checked strictly (`verify_strict`: canonical
//!   `S`, no small-order `R` or key), HMAC tags in constant time;
//! - `exp` is required; `nbf`, `iat` are checked when present; `aud` and
//!   `iss` when configured; all with a leeway (30 s by default);
//! - errors name what is wrong and never contain the token, a signature or
//!   any key material.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use hmac::{Hmac, Mac};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value as Json};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::context::{validate_role, TenantContext};
use crate::value::parse_uuid;

/// The largest token accepted, in bytes of text.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The largest decoded header (JSON), in bytes.
pub const MAX_HEADER_BYTES: usize = 1024;
/// The largest decoded payload (JSON), in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024;
/// The most roles a token may carry.
pub const MAX_ROLES: usize = 64;
/// The shortest HMAC secret accepted (RFC 7518 §3.2: at least the hash size).
pub const MIN_HMAC_SECRET_BYTES: usize = 32;
/// The longest HMAC secret accepted.
pub const MAX_HMAC_SECRET_BYTES: usize = 1024;
/// The most keys one key set may hold.
pub const MAX_KEYS: usize = 64;
/// The longest key id.
pub const MAX_KID_BYTES: usize = 64;
/// The default leeway for `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;

type HmacSha256 = Hmac<Sha256>;

/// A signature algorithm, pinned per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519 signatures (`EdDSA` in the JWS header).
    EdDsa,
    /// HMAC with SHA-256 (`HS256` in the JWS header).
    Hs256,
}

impl Algorithm {
    /// The name in a JWS header: `EdDSA` or `HS256`.
    pub fn jws_name(self) -> &'static str {
        match self {
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Hs256 => "HS256",
        }
    }

    /// The name in key text: `eddsa` or `hs256`.
    pub fn key_name(self) -> &'static str {
        match self {
            Algorithm::EdDsa => "eddsa",
            Algorithm::Hs256 => "hs256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jws_name())
    }
}

/// Which part of a compact JWS an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Header,
    Payload,
    Signature,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Header => "header",
            Part::Payload => "payload",
            Part::Signature => "signature",
        })
    }
}

/// What went wrong with key text, a token or its claims. Messages name the
/// key (by `kid`), the part or the claim, and never contain the token, a
/// signature or key material; values from a token are shown only when they
/// are short and plain (`shown`), and claim values that are not are
/// described instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedError {
    // ---- key text ----
    #[error("key entry {entry}: expected `kid:algorithm:base64url-key`")]
    KeyEntry { entry: usize },
    #[error("key entry {entry}: invalid key id; use 1 to {MAX_KID_BYTES} letters, digits, `_`, `-` or `.`")]
    InvalidKid { entry: usize },
    #[error("invalid key id; use 1 to {MAX_KID_BYTES} letters, digits, `_`, `-` or `.`")]
    InvalidSigningKid,
    #[error("key id `{0}` appears more than once")]
    DuplicateKid(String),
    #[error("key `{kid}`: unknown algorithm{}; expected {expected}", shown_suffix(.algorithm))]
    UnknownAlgorithm {
        kid: String,
        algorithm: Option<String>,
        expected: &'static str,
    },
    #[error("key `{0}` is a private signing key (`eddsa-private`); the key set takes the public key (`eddsa`), as `dnr keygen` prints it")]
    PrivateKeyInKeySet(String),
    #[error("the key of `{kid}` is not base64url without padding")]
    KeyNotBase64 { kid: String },
    #[error("the public key of `{kid}` is {length} bytes; an Ed25519 public key is 32 bytes")]
    PublicKeyLength { kid: String, length: usize },
    #[error("the public key of `{0}` is not a valid Ed25519 public key")]
    InvalidPublicKey(String),
    #[error("the private key of `{0}` is not 32 bytes (an Ed25519 seed)")]
    PrivateKeyLength(String),
    #[error("the secret of key `{0}` is shorter than {MIN_HMAC_SECRET_BYTES} bytes")]
    SecretTooShort(String),
    #[error("the secret of key `{0}` is longer than {MAX_HMAC_SECRET_BYTES} bytes")]
    SecretTooLong(String),
    #[error("too many keys: the limit is {MAX_KEYS}")]
    TooManyKeys,

    // ---- the token's shape ----
    #[error("no keys are configured for signed context")]
    NoKeys,
    #[error("the token is {bytes} bytes; the limit is {MAX_TOKEN_BYTES} bytes")]
    TokenTooLarge { bytes: usize },
    #[error("the token is not a compact JWS: expected 3 parts separated by `.`, found {parts}")]
    NotCompact { parts: usize },
    #[error("the token's {0} is not base64url without padding")]
    NotBase64(Part),
    #[error("the token's {part} is {bytes} bytes; the limit is {limit} bytes")]
    PartTooLarge {
        part: Part,
        bytes: usize,
        limit: usize,
    },
    #[error("the token's {part} is not a JSON object{}", column_suffix(*.column))]
    NotJsonObject { part: Part, column: Option<usize> },
    #[error("the token's {part} has the member{} more than once", shown_suffix(.name))]
    DuplicateMember { part: Part, name: Option<String> },
    #[error("the token's header has no `alg`")]
    MissingAlg,
    #[error("the token is unsigned (`alg: none`); unsigned tokens are never accepted")]
    AlgNone,
    #[error("the token's header has `crit`; no critical header extensions are supported")]
    CriticalHeader,
    #[error("the token has no `kid` and {keys} keys are configured; a `kid` is required when there is more than one key")]
    MissingKid { keys: usize },
    #[error("the token's `kid` must be a string")]
    KidNotString,
    #[error("the token's key id{} is not a configured key", shown_suffix(.kid))]
    UnknownKid { kid: Option<String> },
    #[error("the token's `alg`{} does not match key `{kid}`, which is pinned to `{pinned}`", shown_suffix(.alg))]
    AlgMismatch {
        alg: Option<String>,
        kid: String,
        pinned: Algorithm,
    },
    #[error("the token's signature does not verify with key `{kid}` ({algorithm})")]
    BadSignature { kid: String, algorithm: Algorithm },

    // ---- claims ----
    #[error("the token has no `exp` claim; signed context requires an expiry")]
    MissingExp,
    #[error("claim `{0}` must be a number of seconds since 1970")]
    NotNumericDate(&'static str),
    #[error("the token expired at {exp} (now {now}, leeway {leeway} s)")]
    Expired { exp: i64, now: i64, leeway: u64 },
    #[error("the token is not valid before {nbf} (now {now}, leeway {leeway} s)")]
    NotYetValid { nbf: i64, now: i64, leeway: u64 },
    #[error("the token was issued in the future: `iat` is {iat} (now {now}, leeway {leeway} s)")]
    IssuedInFuture { iat: i64, now: i64, leeway: u64 },
    #[error("the token has no `aud` claim; audience `{expected}` is required")]
    MissingAudience { expected: String },
    #[error("the token's audience does not include `{expected}`")]
    WrongAudience { expected: String },
    #[error("claim `aud` must be a string or an array of strings")]
    AudienceType,
    #[error("the token has no `iss` claim; issuer `{expected}` is required")]
    MissingIssuer { expected: String },
    #[error("the token's issuer is not `{expected}`")]
    WrongIssuer { expected: String },
    #[error("claim `iss` must be a string")]
    IssuerType,
    #[error("claim `{claim}` must be {expected}")]
    ClaimType {
        claim: String,
        expected: &'static str,
    },
    #[error("claim `{claim}`{} is not a uuid", shown_suffix(.value))]
    ClaimNotUuid {
        claim: String,
        value: Option<String>,
    },
    #[error("claim `{claim}`: invalid role name{}; use letters, digits, `_`, `-`, `.` or `:`", shown_suffix(.role))]
    InvalidRole { claim: String, role: Option<String> },
    #[error("claim `{claim}` has {count} roles; the limit is {MAX_ROLES}")]
    TooManyRoles { claim: String, count: usize },

    // ---- signing ----
    #[error("the claims to sign must be a JSON object")]
    ClaimsNotObject,
    #[error("the header to sign must be a JSON object")]
    HeaderNotObject,
}

fn shown_suffix(value: &Option<String>) -> String {
    value
        .as_deref()
        .map(|v| format!(" `{v}`"))
        .unwrap_or_default()
}

fn column_suffix(column: Option<usize>) -> String {
    column
        .map(|c| format!(" (invalid JSON at column {c})"))
        .unwrap_or_default()
}

/// Text from a token (or key text) that may appear in an error: short,
/// printable ASCII (spaces inside) without backticks. Anything else is
/// described, not shown.
fn shown(text: &str) -> Option<String> {
    let plain = !text.is_empty()
        && text.len() <= 64
        && text.trim() == text
        && text
            .bytes()
            .all(|b| (b.is_ascii_graphic() || b == b' ') && b != b'`');
    plain.then(|| text.to_string())
}

/// Key ids are plain words: 1 to 64 letters, digits, `_`, `-` or `.`.
fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_BYTES
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Strict base64url: the URL-safe alphabet, no padding, no stray trailing
/// bits (so each byte string has exactly one text).
fn decode_b64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Encodes bytes as base64url without padding, as JWS and key text use.
pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

// ---------------------------------------------------------------------------
// Key sets
// ---------------------------------------------------------------------------

#[derive(Clone)]
enum VerifyingMaterial {
    Ed25519(ed25519_dalek::VerifyingKey),
    Hmac(Zeroizing<Vec<u8>>),
}

impl VerifyingMaterial {
    fn algorithm(&self) -> Algorithm {
        match self {
            VerifyingMaterial::Ed25519(_) => Algorithm::EdDsa,
            VerifyingMaterial::Hmac(_) => Algorithm::Hs256,
        }
    }
}

/// The keys a host verifies tokens with, by `kid`, each with its algorithm
/// pinned. `Debug` shows key ids and algorithms only.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: BTreeMap<String, VerifyingMaterial>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.keys.iter().map(|(k, m)| (k, m.algorithm())))
            .finish()
    }
}

/// Splits key text into entries: lines, less blank lines and `#` comments,
/// each split at commas; entries are trimmed and empty ones skipped.
fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
}

/// One entry split into `(kid, algorithm, key)`, the kid checked.
fn split_entry(entry: &str, number: usize) -> Result<(&str, &str, &str), SignedError> {
    let mut fields = entry.splitn(3, ':');
    let (Some(kid), Some(algorithm), Some(key)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(SignedError::KeyEntry { entry: number });
    };
    let (kid, algorithm, key) = (kid.trim(), algorithm.trim(), key.trim());
    if !valid_kid(kid) {
        return Err(SignedError::InvalidKid { entry: number });
    }
    Ok((kid, algorithm, key))
}

/// The algorithm field of key text, shown in errors only when it is short
/// (a key or secret is never that short).
fn shown_algorithm(algorithm: &str) -> Option<String> {
    (algorithm.len() <= 16).then(|| shown(algorithm)).flatten()
}

impl KeySet {
    /// An empty key set; every token is refused until keys are added.
    pub fn new() -> KeySet {
        KeySet::default()
    }

    /// Parses key text as a setting holds it: entries `kid:eddsa:<base64url
    /// 32-byte public key>` or `kid:hs256:<base64url secret of 32 to 1024
    /// bytes>`, separated by commas or newlines; blank entries and lines
    /// starting with `#` are skipped. Errors name the entry or the `kid`,
    /// never the key material.
    pub fn parse(text: &str) -> Result<KeySet, SignedError> {
        let mut set = KeySet::new();
        for (index, entry) in entries(text).enumerate() {
            let (kid, algorithm, key) = split_entry(entry, index + 1)?;
            match algorithm.to_ascii_lowercase().as_str() {
                "eddsa" => {
                    let bytes = Zeroizing::new(decode_b64(key).ok_or_else(|| {
                        SignedError::KeyNotBase64 {
                            kid: kid.to_string(),
                        }
                    })?);
                    let public: [u8; 32] =
                        bytes
                            .as_slice()
                            .try_into()
                            .map_err(|_| SignedError::PublicKeyLength {
                                kid: kid.to_string(),
                                length: bytes.len(),
                            })?;
                    set.add_eddsa(kid, &public)?;
                }
                "hs256" => {
                    let secret = Zeroizing::new(decode_b64(key).ok_or_else(|| {
                        SignedError::KeyNotBase64 {
                            kid: kid.to_string(),
                        }
                    })?);
                    set.add_hs256(kid, &secret)?;
                }
                "eddsa-private" => return Err(SignedError::PrivateKeyInKeySet(kid.to_string())),
                _ => {
                    return Err(SignedError::UnknownAlgorithm {
                        kid: kid.to_string(),
                        algorithm: shown_algorithm(algorithm),
                        expected: "`eddsa` or `hs256`",
                    })
                }
            }
        }
        Ok(set)
    }

    /// Adds an Ed25519 public key. Points that do not decode and weak
    /// (small-order) keys are refused.
    pub fn add_eddsa(&mut self, kid: &str, public_key: &[u8; 32]) -> Result<(), SignedError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(public_key)
            .map_err(|_| SignedError::InvalidPublicKey(kid.to_string()))?;
        if key.is_weak() {
            return Err(SignedError::InvalidPublicKey(kid.to_string()));
        }
        self.insert(kid, VerifyingMaterial::Ed25519(key))
    }

    /// Adds an HMAC-SHA-256 secret of 32 to 1024 bytes.
    pub fn add_hs256(&mut self, kid: &str, secret: &[u8]) -> Result<(), SignedError> {
        check_secret(kid, secret)?;
        self.insert(
            kid,
            VerifyingMaterial::Hmac(Zeroizing::new(secret.to_vec())),
        )
    }

    fn insert(&mut self, kid: &str, material: VerifyingMaterial) -> Result<(), SignedError> {
        if !valid_kid(kid) {
            return Err(SignedError::InvalidSigningKid);
        }
        if self.keys.contains_key(kid) {
            return Err(SignedError::DuplicateKid(kid.to_string()));
        }
        if self.keys.len() >= MAX_KEYS {
            return Err(SignedError::TooManyKeys);
        }
        self.keys.insert(kid.to_string(), material);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, in order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// The algorithm pinned for `kid`, if the set holds it.
    pub fn algorithm(&self, kid: &str) -> Option<Algorithm> {
        self.keys.get(kid).map(VerifyingMaterial::algorithm)
    }
}

fn check_secret(kid: &str, secret: &[u8]) -> Result<(), SignedError> {
    if secret.len() < MIN_HMAC_SECRET_BYTES {
        return Err(SignedError::SecretTooShort(kid.to_string()));
    }
    if secret.len() > MAX_HMAC_SECRET_BYTES {
        return Err(SignedError::SecretTooLong(kid.to_string()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

/// The claims the context is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    /// The tenant's uuid; `tid` by default.
    pub tenant: String,
    /// The user's uuid; `sub` by default.
    pub user: String,
    /// The roles, an array of strings; `roles` by default.
    pub roles: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            tenant: "tid".to_string(),
            user: "sub".to_string(),
            roles: "roles".to_string(),
        }
    }
}

/// How tokens are checked beyond their signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Allowed clock difference for `exp`, `nbf` and `iat`, in seconds.
    pub leeway_seconds: u64,
    /// When set, `aud` is required and must be, or contain, this value.
    pub audience: Option<String>,
    /// When set, `iss` is required and must equal this value.
    pub issuer: Option<String>,
    /// The claims mapped to tenant, user and roles.
    pub claims: ClaimNames,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
            audience: None,
            issuer: None,
            claims: ClaimNames::default(),
        }
    }
}

/// A verified token: the context its claims give, and when it expires, so
/// that a host may cache it (keyed by the token text) until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub context: TenantContext,
    /// The `exp` claim, unix seconds (rounded down). The token is refused
    /// from `expires_at + leeway` on.
    pub expires_at: i64,
    /// The key that verified it.
    pub kid: String,
}

impl Verified {
    /// Whether a cached verification still holds at `now`, with the same
    /// leeway as [`verify`] applies.
    pub fn valid_at(&self, now: i64, leeway_seconds: u64) -> bool {
        now < self.expires_at.saturating_add(leeway(leeway_seconds))
    }
}

fn leeway(seconds: u64) -> i64 {
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

/// A JSON object that refuses duplicate member names, so that no two
/// readers of a token can see different values for one claim.
struct UniqueObject(Map<String, Json>);

/// The duplicated name, carried out of serde's error through a marker.
const DUPLICATE_MARKER: &str = "dnr-duplicate-member:";

impl<'de> Deserialize<'de> for UniqueObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = UniqueObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueObject, A::Error> {
                let mut map = Map::new();
                while let Some(name) = access.next_key::<String>()? {
                    let value: Json = access.next_value()?;
                    if map.contains_key(&name) {
                        return Err(serde::de::Error::custom(format!(
                            "{DUPLICATE_MARKER}{name}"
                        )));
                    }
                    map.insert(name, value);
                }
                Ok(UniqueObject(map))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

fn parse_object(part: Part, bytes: &[u8]) -> Result<Map<String, Json>, SignedError> {
    match serde_json::from_slice::<UniqueObject>(bytes) {
        Ok(UniqueObject(map)) => Ok(map),
        Err(error) => {
            let message = error.to_string();
            if let Some(rest) = message.strip_prefix(DUPLICATE_MARKER) {
                // serde_json appends " at line L column C"; the name is before.
                let name = rest.rsplit_once(" at line ").map_or(rest, |(name, _)| name);
                return Err(SignedError::DuplicateMember {
                    part,
                    name: shown(name),
                });
            }
            let column = (error.classify() == serde_json::error::Category::Syntax
                || error.classify() == serde_json::error::Category::Eof)
                .then_some(error.column());
            Err(SignedError::NotJsonObject { part, column })
        }
    }
}

/// Verifies a compact JWS and maps its claims to a [`TenantContext`].
///
/// `now` is the current time in unix seconds. Checks, in order: size,
/// shape, strict base64url, header (`alg` present and not `none`, no
/// `crit`), the key by `kid` and its pinned algorithm, the signature, then
/// the claims. The payload is not parsed before the signature verifies.
pub fn verify(
    token: &str,
    keys: &KeySet,
    options: &VerifyOptions,
    now: i64,
) -> Result<Verified, SignedError> {
    if keys.is_empty() {
        return Err(SignedError::NoKeys);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(SignedError::TokenTooLarge { bytes: token.len() });
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, payload_b64, signature_b64] = parts.as_slice() else {
        return Err(SignedError::NotCompact { parts: parts.len() });
    };
    let header = decode_part(Part::Header, header_b64, MAX_HEADER_BYTES)?;
    let payload = decode_part(Part::Payload, payload_b64, MAX_PAYLOAD_BYTES)?;
    let signature = decode_part(Part::Signature, signature_b64, 512)?;

    let header = parse_object(Part::Header, &header)?;
    let alg = match header.get("alg") {
        None => return Err(SignedError::MissingAlg),
        Some(Json::String(alg)) => Some(alg.as_str()),
        Some(_) => None,
    };
    if alg.is_some_and(|alg| alg.eq_ignore_ascii_case("none")) {
        return Err(SignedError::AlgNone);
    }
    if header.contains_key("crit") {
        return Err(SignedError::CriticalHeader);
    }
    let (kid, material) = match header.get("kid") {
        Some(Json::String(kid)) => match keys.keys.get_key_value(kid.as_str()) {
            Some(found) => found,
            None => return Err(SignedError::UnknownKid { kid: shown(kid) }),
        },
        Some(_) => return Err(SignedError::KidNotString),
        None => {
            let mut all = keys.keys.iter();
            match (all.next(), all.next()) {
                (Some(only), None) => only,
                _ => return Err(SignedError::MissingKid { keys: keys.len() }),
            }
        }
    };
    let pinned = material.algorithm();
    if alg != Some(pinned.jws_name()) {
        return Err(SignedError::AlgMismatch {
            alg: alg.and_then(shown),
            kid: kid.clone(),
            pinned,
        });
    }

    // The signing input is the token's text up to the second dot.
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    let valid = match material {
        VerifyingMaterial::Ed25519(key) => ed25519_dalek::Signature::from_slice(&signature)
            .is_ok_and(|sig| key.verify_strict(signing_input.as_bytes(), &sig).is_ok()),
        VerifyingMaterial::Hmac(secret) => {
            HmacSha256::new_from_slice(secret).is_ok_and(|mut mac| {
                mac.update(signing_input.as_bytes());
                mac.verify_slice(&signature).is_ok()
            })
        }
    };
    if !valid {
        return Err(SignedError::BadSignature {
            kid: kid.clone(),
            algorithm: pinned,
        });
    }

    let claims = parse_object(Part::Payload, &payload)?;
    let expires_at = check_times(&claims, options, now)?;
    check_audience_issuer(&claims, options)?;
    let context = context_from_claims(&claims, &options.claims)?;
    Ok(Verified {
        context,
        expires_at,
        kid: kid.clone(),
    })
}

fn decode_part(part: Part, text: &str, limit: usize) -> Result<Vec<u8>, SignedError> {
    // The decoded size, known before decoding.
    let bytes = text.len() / 4 * 3 + (text.len() % 4).saturating_sub(1);
    if bytes > limit {
        return Err(SignedError::PartTooLarge { part, bytes, limit });
    }
    decode_b64(text).ok_or(SignedError::NotBase64(part))
}

/// A NumericDate claim: an integer, or a finite number rounded towards the
/// stricter side (`exp` down, `nbf` and `iat` up).
fn numeric_date(
    claims: &Map<String, Json>,
    name: &'static str,
    round_up: bool,
) -> Result<Option<i64>, SignedError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let Json::Number(number) = value else {
        return Err(SignedError::NotNumericDate(name));
    };
    if let Some(n) = number.as_i64() {
        return Ok(Some(n));
    }
    if number.as_u64().is_some() {
        return Ok(Some(i64::MAX));
    }
    match number.as_f64() {
        // `as` saturates at the ends of i64.
        Some(f) if f.is_finite() => {
            let rounded = if round_up { f.ceil() } else { f.floor() };
            Ok(Some(rounded as i64))
        }
        _ => Err(SignedError::NotNumericDate(name)),
    }
}

fn check_times(
    claims: &Map<String, Json>,
    options: &VerifyOptions,
    now: i64,
) -> Result<i64, SignedError> {
    let leeway_s = leeway(options.leeway_seconds);
    let exp = numeric_date(claims, "exp", false)?.ok_or(SignedError::MissingExp)?;
    if now >= exp.saturating_add(leeway_s) {
        return Err(SignedError::Expired {
            exp,
            now,
            leeway: options.leeway_seconds,
        });
    }
    if let Some(nbf) = numeric_date(claims, "nbf", true)? {
        if now.saturating_add(leeway_s) < nbf {
            return Err(SignedError::NotYetValid {
                nbf,
                now,
                leeway: options.leeway_seconds,
            });
        }
    }
    if let Some(iat) = numeric_date(claims, "iat", true)? {
        if iat > now.saturating_add(leeway_s) {
            return Err(SignedError::IssuedInFuture {
                iat,
                now,
                leeway: options.leeway_seconds,
            });
        }
    }
    Ok(exp)
}

fn check_audience_issuer(
    claims: &Map<String, Json>,
    options: &VerifyOptions,
) -> Result<(), SignedError> {
    if let Some(expected) = &options.audience {
        let found = match claims.get("aud") {
            None | Some(Json::Null) => {
                return Err(SignedError::MissingAudience {
                    expected: expected.clone(),
                })
            }
            Some(Json::String(aud)) => aud == expected,
            Some(Json::Array(items)) => {
                let mut found = false;
                for item in items {
                    match item {
                        Json::String(aud) => found |= aud == expected,
                        _ => return Err(SignedError::AudienceType),
                    }
                }
                found
            }
            Some(_) => return Err(SignedError::AudienceType),
        };
        if !found {
            return Err(SignedError::WrongAudience {
                expected: expected.clone(),
            });
        }
    }
    if let Some(expected) = &options.issuer {
        match claims.get("iss") {
            None | Some(Json::Null) => {
                return Err(SignedError::MissingIssuer {
                    expected: expected.clone(),
                })
            }
            Some(Json::String(iss)) if iss == expected => {}
            Some(Json::String(_)) => {
                return Err(SignedError::WrongIssuer {
                    expected: expected.clone(),
                })
            }
            Some(_) => return Err(SignedError::IssuerType),
        }
    }
    Ok(())
}

/// A uuid claim: absent or `null` is unset; otherwise a string that parses
/// as a uuid (the empty string does not).
fn uuid_claim(claims: &Map<String, Json>, name: &str) -> Result<Option<uuid::Uuid>, SignedError> {
    match claims.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(text)) => {
            parse_uuid(text)
                .map(Some)
                .map_err(|_| SignedError::ClaimNotUuid {
                    claim: name.to_string(),
                    value: shown(text),
                })
        }
        Some(_) => Err(SignedError::ClaimType {
            claim: name.to_string(),
            expected: "a uuid string",
        }),
    }
}

/// Maps claims to a context: the tenant and user claims must be uuid
/// strings, the roles claim an array of role names (at most [`MAX_ROLES`]).
/// Absent or `null` claims leave the field unset (no tenant sees no
/// tenant-scoped rows).
pub fn context_from_claims(
    claims: &Map<String, Json>,
    names: &ClaimNames,
) -> Result<TenantContext, SignedError> {
    let tenant = uuid_claim(claims, &names.tenant)?;
    let user = uuid_claim(claims, &names.user)?;
    let roles = match claims.get(&names.roles) {
        None | Some(Json::Null) => BTreeSet::new(),
        Some(Json::Array(items)) => {
            if items.len() > MAX_ROLES {
                return Err(SignedError::TooManyRoles {
                    claim: names.roles.clone(),
                    count: items.len(),
                });
            }
            let mut roles = BTreeSet::new();
            for item in items {
                let Json::String(role) = item else {
                    return Err(SignedError::ClaimType {
                        claim: names.roles.clone(),
                        expected: "an array of strings",
                    });
                };
                let role = validate_role(role).map_err(|_| SignedError::InvalidRole {
                    claim: names.roles.clone(),
                    role: shown(role),
                })?;
                roles.insert(role);
            }
            roles
        }
        Some(_) => {
            return Err(SignedError::ClaimType {
                claim: names.roles.clone(),
                expected: "an array of strings",
            })
        }
    };
    Ok(TenantContext {
        tenant,
        user,
        roles,
    })
}

// ---------------------------------------------------------------------------
// Signing (development and tests)
// ---------------------------------------------------------------------------

enum SigningMaterial {
    Ed25519(Box<ed25519_dalek::SigningKey>),
    Hmac(Zeroizing<Vec<u8>>),
}

/// A key that signs tokens, for development and tests. Its text form, as
/// `dnr keygen` writes it and `dnr token --key` reads it, is
/// `kid:eddsa-private:<base64url 32-byte seed>` or `kid:hs256:<base64url
/// secret>`. `Debug` shows the key id and algorithm only; the material is
/// zeroed when dropped.
pub struct SigningKey {
    kid: String,
    material: SigningMaterial,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// An Ed25519 key from its 32-byte seed (the private key).
    pub fn eddsa(kid: &str, seed: &[u8; 32]) -> Result<SigningKey, SignedError> {
        if !valid_kid(kid) {
            return Err(SignedError::InvalidSigningKid);
        }
        Ok(SigningKey {
            kid: kid.to_string(),
            material: SigningMaterial::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(
                seed,
            ))),
        })
    }

    /// An HMAC-SHA-256 key from its secret (32 to 1024 bytes).
    pub fn hs256(kid: &str, secret: &[u8]) -> Result<SigningKey, SignedError> {
        if !valid_kid(kid) {
            return Err(SignedError::InvalidSigningKid);
        }
        check_secret(kid, secret)?;
        Ok(SigningKey {
            kid: kid.to_string(),
            material: SigningMaterial::Hmac(Zeroizing::new(secret.to_vec())),
        })
    }

    /// Parses signing key text: entries `kid:eddsa-private:<seed>` or
    /// `kid:hs256:<secret>`, separated by commas or newlines, `#` lines
    /// skipped. Public key entries (`kid:eddsa:<public key>`) are skipped
    /// too, so that the whole output of `dnr keygen` is signing key text.
    /// Errors never contain key material.
    pub fn parse_all(text: &str) -> Result<Vec<SigningKey>, SignedError> {
        let mut keys: Vec<SigningKey> = Vec::new();
        for (index, entry) in entries(text).enumerate() {
            let (kid, algorithm, key) = split_entry(entry, index + 1)?;
            let algorithm = algorithm.to_ascii_lowercase();
            match algorithm.as_str() {
                "eddsa-private" | "hs256" => {}
                "eddsa" => continue,
                _ => {
                    return Err(SignedError::UnknownAlgorithm {
                        kid: kid.to_string(),
                        algorithm: shown_algorithm(&algorithm),
                        expected: "`eddsa-private` or `hs256`",
                    })
                }
            }
            let bytes =
                Zeroizing::new(decode_b64(key).ok_or_else(|| SignedError::KeyNotBase64 {
                    kid: kid.to_string(),
                })?);
            let key = if algorithm == "hs256" {
                SigningKey::hs256(kid, &bytes)?
            } else {
                let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| SignedError::PrivateKeyLength(kid.to_string()))?,
                );
                SigningKey::eddsa(kid, &seed)?
            };
            if keys.iter().any(|k| k.kid == key.kid) {
                return Err(SignedError::DuplicateKid(key.kid));
            }
            if keys.len() >= MAX_KEYS {
                return Err(SignedError::TooManyKeys);
            }
            keys.push(key);
        }
        Ok(keys)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.material {
            SigningMaterial::Ed25519(_) => Algorithm::EdDsa,
            SigningMaterial::Hmac(_) => Algorithm::Hs256,
        }
    }

    /// The key set entry that verifies this key's tokens: `kid:eddsa:<public
    /// key>`, or for HS256 `kid:hs256:<secret>` (the secret itself).
    pub fn key_set_line(&self) -> String {
        match &self.material {
            SigningMaterial::Ed25519(key) => format!(
                "{}:eddsa:{}",
                self.kid,
                base64url(key.verifying_key().as_bytes())
            ),
            SigningMaterial::Hmac(secret) => format!("{}:hs256:{}", self.kid, base64url(secret)),
        }
    }

    /// This key in signing key text: `kid:eddsa-private:<seed>` or
    /// `kid:hs256:<secret>`. Secret material: keep it out of logs.
    pub fn signing_key_line(&self) -> Zeroizing<String> {
        Zeroizing::new(match &self.material {
            SigningMaterial::Ed25519(key) => {
                let seed = Zeroizing::new(key.to_bytes());
                format!("{}:eddsa-private:{}", self.kid, base64url(seed.as_slice()))
            }
            SigningMaterial::Hmac(secret) => format!("{}:hs256:{}", self.kid, base64url(secret)),
        })
    }

    /// The Ed25519 public key, for EdDSA keys.
    pub fn public_key(&self) -> Option<[u8; 32]> {
        match &self.material {
            SigningMaterial::Ed25519(key) => Some(key.verifying_key().to_bytes()),
            SigningMaterial::Hmac(_) => None,
        }
    }

    /// Signs `claims` (a JSON object) with the header `{"alg": <this key's
    /// algorithm>, "typ": "JWT", "kid": <kid>}`.
    pub fn sign(&self, claims: &Json) -> Result<String, SignedError> {
        let header = serde_json::json!({
            "alg": self.algorithm().jws_name(),
            "typ": "JWT",
            "kid": self.kid,
        });
        self.sign_with_header(&header, claims)
    }

    /// Signs `claims` under any `header`, as given: for tests of hostile
    /// headers (a wrong `alg`, no `kid`, `crit`). The header is not checked
    /// against the key.
    pub fn sign_with_header(&self, header: &Json, claims: &Json) -> Result<String, SignedError> {
        if !header.is_object() {
            return Err(SignedError::HeaderNotObject);
        }
        if !claims.is_object() {
            return Err(SignedError::ClaimsNotObject);
        }
        let mut token = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let signature = match &self.material {
            SigningMaterial::Ed25519(key) => key.sign(token.as_bytes()).to_bytes().to_vec(),
            SigningMaterial::Hmac(secret) => {
                // Any key length is valid for HMAC; the error cannot occur.
                let mut mac = HmacSha256::new_from_slice(secret)
                    .map_err(|_| SignedError::SecretTooShort(self.kid.clone()))?;
                mac.update(token.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
        };
        token.push('.');
        token.push_str(&base64url(&signature));
        Ok(token)
    }
}

/// Signs `claims` with an HMAC-SHA-256 `secret` (32 to 1024 bytes) under
/// `kid` (no `kid` header when `None`). For development and tests.
pub fn sign_hs256(claims: &Json, kid: Option<&str>, secret: &[u8]) -> Result<String, SignedError> {
    sign_with(SigningKey::hs256(kid.unwrap_or("k"), secret)?, claims, kid)
}

/// Signs `claims` with the Ed25519 key whose 32-byte seed is `signing_key`
/// under `kid` (no `kid` header when `None`). For development and tests.
pub fn sign_eddsa(
    claims: &Json,
    kid: Option<&str>,
    signing_key: &[u8; 32],
) -> Result<String, SignedError> {
    sign_with(
        SigningKey::eddsa(kid.unwrap_or("k"), signing_key)?,
        claims,
        kid,
    )
}

fn sign_with(key: SigningKey, claims: &Json, kid: Option<&str>) -> Result<String, SignedError> {
    match kid {
        Some(_) => key.sign(claims),
        None => key.sign_with_header(
            &serde_json::json!({ "alg": key.algorithm().jws_name(), "typ": "JWT" }),
            claims,
        ),
    }
}

/// The Ed25519 public key of a 32-byte seed.
pub fn eddsa_public_key(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
}
