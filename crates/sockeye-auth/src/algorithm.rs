//! The signature algorithms a [`Verifier`](crate::Verifier) can accept.

use std::fmt;
use std::str::FromStr;

use jsonwebtoken::{Algorithm as Jwa, AlgorithmFamily};

/// A JWS signature algorithm (RFC 7518 names).
///
/// `none` is deliberately not a variant: an unsigned token can never be accepted.
#[allow(clippy::upper_case_acronyms)]
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// HMAC with SHA-256 (shared secret).
    HS256,
    /// HMAC with SHA-384 (shared secret).
    HS384,
    /// HMAC with SHA-512 (shared secret).
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

/// The key family an algorithm needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

impl Family {
    pub(crate) fn of_jwt(family: AlgorithmFamily) -> Self {
        match family {
            AlgorithmFamily::Hmac => Self::Hmac,
            AlgorithmFamily::Rsa => Self::Rsa,
            AlgorithmFamily::Ec => Self::Ec,
            AlgorithmFamily::Ed => Self::Ed,
        }
    }
}

impl Algorithm {
    /// Every algorithm, in a stable order.
    pub const ALL: [Self; 12] = [
        Self::HS256,
        Self::HS384,
        Self::HS512,
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
    ];

    /// The name used in a JWT header's `alg` and on the command line (`--jwt-algorithms`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    /// Whether this algorithm uses a shared secret (HS256/384/512).
    pub const fn is_hmac(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }

    pub(crate) fn family(self) -> Family {
        match self {
            Self::HS256 | Self::HS384 | Self::HS512 => Family::Hmac,
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                Family::Rsa
            }
            Self::ES256 | Self::ES384 => Family::Ec,
            Self::EdDSA => Family::Ed,
        }
    }

    /// Exact, case-sensitive match on the header name (RFC 7515: `alg` is case-sensitive).
    pub(crate) fn from_header(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == name)
    }

    pub(crate) fn to_jwt(self) -> Jwa {
        match self {
            Self::HS256 => Jwa::HS256,
            Self::HS384 => Jwa::HS384,
            Self::HS512 => Jwa::HS512,
            Self::RS256 => Jwa::RS256,
            Self::RS384 => Jwa::RS384,
            Self::RS512 => Jwa::RS512,
            Self::PS256 => Jwa::PS256,
            Self::PS384 => Jwa::PS384,
            Self::PS512 => Jwa::PS512,
            Self::ES256 => Jwa::ES256,
            Self::ES384 => Jwa::ES384,
            Self::EdDSA => Jwa::EdDSA,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of [`Algorithm::from_str`]: the name is not one this crate accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown or unsupported JWT algorithm (expected one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
)]
pub struct UnknownAlgorithm;

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Parses an algorithm name. The match ignores ASCII case, so `hs256` works on a
    /// command line; `none` is always refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(s))
            .ok_or(UnknownAlgorithm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>(), Ok(alg));
            assert_eq!(Algorithm::from_header(alg.as_str()), Some(alg));
            assert_eq!(Family::of_jwt(alg.to_jwt().family()), alg.family());
        }
        assert_eq!("hs384".parse::<Algorithm>(), Ok(Algorithm::HS384));
        assert!("none".parse::<Algorithm>().is_err());
        assert_eq!(Algorithm::from_header("hs256"), None);
        assert_eq!(Algorithm::from_header("none"), None);
    }
}
