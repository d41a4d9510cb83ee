//! Shared helpers for the integration tests: fixtures, raw token building, a fixed clock.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm as Jwa, EncodingKey};
use serde_json::{Value, json};
use sockeye_auth::{Rejection, Token, Verifier};

/// A 38-byte secret made for these tests.
pub const SECRET: &[u8] = b"sockeye-test-secret-0123456789abcdefgh";
pub const OTHER_SECRET: &[u8] = b"another-sockeye-secret-0123456789abcdef";
/// The fixed "now" of every test, in Unix seconds.
pub const NOW: u64 = 1_700_000_000;

pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

pub fn now() -> SystemTime {
    at(NOW)
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `header.claims` (both given as raw JSON text, valid or not) with `key` and `alg`.
pub fn raw_token(
    header: impl AsRef<[u8]>,
    claims: impl AsRef<[u8]>,
    key: &EncodingKey,
    alg: Jwa,
) -> String {
    let message = format!("{}.{}", b64(header.as_ref()), b64(claims.as_ref()));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

/// A token with JSON header and claims values, signed.
pub fn token_json(header: &Value, claims: &Value, key: &EncodingKey, alg: Jwa) -> String {
    raw_token(header.to_string(), claims.to_string(), key, alg)
}

pub fn hs(secret: &[u8]) -> EncodingKey {
    EncodingKey::from_secret(secret).unwrap()
}

pub fn rsa(name: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(&fixture(name)).unwrap()
}

/// A valid HS256 token for `sub` expiring an hour after [`NOW`].
pub fn good_hs256(sub: &str) -> String {
    token_json(
        &json!({ "alg": "HS256", "typ": "JWT" }),
        &json!({ "sub": sub, "exp": NOW + 3600 }),
        &hs(SECRET),
        Jwa::HS256,
    )
}

pub fn hs256_verifier() -> Verifier {
    Verifier::builder().hmac_secret(SECRET).build().unwrap()
}

/// `Token::new` then `verify` at [`NOW`].
pub fn check(verifier: &Verifier, text: &str) -> Result<String, Rejection> {
    check_at(verifier, text, NOW)
}

pub fn check_at(verifier: &Verifier, text: &str, now: u64) -> Result<String, Rejection> {
    let token = Token::new(text)?;
    verifier
        .verify(&token, at(now))
        .map(|claims| claims.sub().unwrap_or_default().to_owned())
}

/// Asserts that neither `Display` nor `Debug` of `error` reveals `token` or a piece of it of
/// 8 characters or more (shorter ones could match the fixed error words by chance).
pub fn assert_no_token_text(error: &(impl std::fmt::Display + std::fmt::Debug), token: &str) {
    for text in [
        format!("{error}"),
        format!("{error:?}"),
        format!("{error:#?}"),
    ] {
        assert!(token.len() < 8 || !text.contains(token), "{text}");
        for piece in token.split('.').filter(|p| p.len() >= 8) {
            assert!(
                !text.contains(piece),
                "error text {text:?} contains a token piece"
            );
        }
    }
}

/// A fresh file path under the temp dir, unique to this process and `name`.
pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sockeye-auth-test-{}-{name}", std::process::id()))
}
