//! Minting HS* tokens: the server's development mode and the `sockeye token` command.

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Map, Value};

use crate::verifier::{MIN_SECRET_LEN, ensure_crypto_provider};
use crate::{Algorithm, Token};

/// What [`mint`] puts in a token.
#[derive(Clone, Debug)]
#[must_use]
pub struct MintClaims {
    algorithm: Algorithm,
    sub: String,
    exp: u64,
    iat: Option<u64>,
    iss: Option<String>,
    aud: Option<String>,
}

impl MintClaims {
    /// A token for user `sub` that expires at `exp` (seconds since the Unix epoch), signed
    /// with HS256.
    pub fn new(sub: impl Into<String>, exp: u64) -> Self {
        Self {
            algorithm: Algorithm::HS256,
            sub: sub.into(),
            exp,
            iat: None,
            iss: None,
            aud: None,
        }
    }

    /// Signs with another HMAC algorithm (HS384, HS512).
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Adds `iat` (issued at, seconds since the Unix epoch).
    pub fn issued_at(mut self, iat: u64) -> Self {
        self.iat = Some(iat);
        self
    }

    /// Adds `iss`.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.iss = Some(iss.into());
        self
    }

    /// Adds `aud` (a single string).
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.aud = Some(aud.into());
        self
    }
}

/// Why [`mint`] failed. Never contains the secret.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// The secret is shorter than [`MIN_SECRET_LEN`].
    #[error("the JWT secret is {len} bytes long; at least {MIN_SECRET_LEN} are required")]
    SecretTooShort {
        /// The secret's length in bytes.
        len: usize,
    },
    /// Minting supports the HMAC algorithms only.
    #[error("tokens can only be minted with HS256, HS384 or HS512, not {0}")]
    NotHmac(Algorithm),
    /// The signer failed (not expected with an HMAC key).
    #[error("signing the token failed")]
    Signing,
}

/// Signs a token with a shared secret: header `{"alg": <HS*>, "typ": "JWT"}`, claims `sub`,
/// `exp` and the optional `iat`, `iss`, `aud`.
///
/// # Errors
///
/// [`MintError::SecretTooShort`] for a secret under 32 bytes, [`MintError::NotHmac`] for a
/// non-HMAC algorithm.
pub fn mint(secret: &[u8], claims: &MintClaims) -> Result<Token, MintError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(MintError::SecretTooShort { len: secret.len() });
    }
    if !claims.algorithm.is_hmac() {
        return Err(MintError::NotHmac(claims.algorithm));
    }
    ensure_crypto_provider();
    let mut map = Map::new();
    map.insert("sub".to_owned(), Value::from(claims.sub.as_str()));
    map.insert("exp".to_owned(), Value::from(claims.exp));
    if let Some(iat) = claims.iat {
        map.insert("iat".to_owned(), Value::from(iat));
    }
    if let Some(iss) = &claims.iss {
        map.insert("iss".to_owned(), Value::from(iss.as_str()));
    }
    if let Some(aud) = &claims.aud {
        map.insert("aud".to_owned(), Value::from(aud.as_str()));
    }
    let header = Header::new(claims.algorithm.to_jwt());
    let key = EncodingKey::from_secret(secret).map_err(|_| MintError::Signing)?;
    let text = jsonwebtoken::encode(&header, &map, &key).map_err(|_| MintError::Signing)?;
    Token::new(&text).map_err(|_| MintError::Signing)
}
