#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod algorithm;
mod claims;
mod mint;
mod rejection;
mod token;
mod verifier;

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use claims::Claims;
pub use mint::{MintClaims, MintError, mint};
pub use rejection::Rejection;
pub use token::{MAX_TOKEN_LEN, Token, extract_token, percent_decode, token_from_query};
pub use verifier::{
    ConfigError, MAX_JWKS_LEN, MIN_RSA_BITS, MIN_SECRET_LEN, Verifier, VerifierBuilder,
};
