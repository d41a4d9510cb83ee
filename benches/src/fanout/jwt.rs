//! Mints the HS256 token the generator's clients present, for servers that require one.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header, encode};
use serde::Serialize;

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
}

/// An HS256 JWT for `sub`, valid for `ttl_secs` from now.
///
/// # Errors
/// The `jsonwebtoken` error when signing fails.
pub fn mint_hs256(
    secret: &[u8],
    sub: &str,
    ttl_secs: u64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = Claims {
        sub,
        iat: now,
        exp: now + ttl_secs,
    };
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mints_a_three_part_hs256_token() {
        let token = mint_hs256(b"0123456789abcdef0123456789abcdef", "bench", 60).unwrap();
        assert_eq!(token.split('.').count(), 3);
        // {"typ":"JWT","alg":"HS256"} in base64url
        assert!(token.starts_with("eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9."));
    }
}
