//! Why a handshake token was refused.

/// Why a token was refused. [`reason`](Self::reason) is the `reason` string a client sees in
/// `connect_error` (`{ message: "unauthorized", data: { code: "UNAUTHORIZED", reason } }`).
///
/// The `detail` strings are fixed texts written in this crate, for server logs: no variant
/// ever holds any part of the token, so `Display` and `Debug` are safe to log.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No source carried a token.
    #[error("missing token")]
    Missing,
    /// The token is not a well-formed JWT, is too large, lacks a required claim or has a
    /// claim of the wrong type.
    #[error("malformed token: {detail}")]
    Malformed {
        /// What is wrong, for logs.
        detail: &'static str,
    },
    /// No configured key verifies the signature (including an unknown `kid`).
    #[error("bad signature: {detail}")]
    BadSignature {
        /// What is wrong, for logs.
        detail: &'static str,
    },
    /// `exp` (plus the leeway) has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` (minus the leeway) is still in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not one of the configured issuers.
    #[error("bad issuer")]
    BadIssuer,
    /// `aud` names none of the configured audiences.
    #[error("bad audience")]
    BadAudience,
    /// The header's `alg` is `none`, unknown, or not one of the configured algorithms.
    #[error("bad algorithm")]
    BadAlgorithm,
    /// A replacement token (the `auth` event) is valid but names another `sub`.
    /// Only [`Verifier::verify_refresh`](crate::Verifier::verify_refresh) returns it.
    #[error("subject mismatch")]
    SubMismatch,
}

impl Rejection {
    pub(crate) const fn malformed(detail: &'static str) -> Self {
        Self::Malformed { detail }
    }

    pub(crate) const fn bad_signature(detail: &'static str) -> Self {
        Self::BadSignature { detail }
    }

    /// The contract's `reason` string: `missing`, `malformed`, `bad_signature`, `expired`,
    /// `not_yet_valid`, `bad_issuer`, `bad_audience`, `bad_algorithm`, or `sub_mismatch`
    /// (the last only for the `auth` event).
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed { .. } => "malformed",
            Self::BadSignature { .. } => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::BadIssuer => "bad_issuer",
            Self::BadAudience => "bad_audience",
            Self::BadAlgorithm => "bad_algorithm",
            Self::SubMismatch => "sub_mismatch",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_the_contract_strings() {
        let all = [
            (Rejection::Missing, "missing"),
            (Rejection::malformed("x"), "malformed"),
            (Rejection::bad_signature("x"), "bad_signature"),
            (Rejection::Expired, "expired"),
            (Rejection::NotYetValid, "not_yet_valid"),
            (Rejection::BadIssuer, "bad_issuer"),
            (Rejection::BadAudience, "bad_audience"),
            (Rejection::BadAlgorithm, "bad_algorithm"),
            (Rejection::SubMismatch, "sub_mismatch"),
        ];
        for (rejection, reason) in all {
            assert_eq!(rejection.reason(), reason);
            let text = rejection.to_string();
            assert_eq!(text, text.to_lowercase(), "Display is lowercase");
        }
    }
}
