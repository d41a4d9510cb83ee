//! Verification: configuration, keys, JWKS rotation and the checks in order.

use std::collections::HashSet;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{DecodingKey, DecodingKeyKind, Validation};
use serde_json::{Map, Value};

use crate::algorithm::Family;
use crate::claims::Required;
use crate::{Algorithm, Claims, Rejection, Token};

/// The shortest HMAC secret accepted, in bytes (RFC 7518 section 3.2: at least the hash size;
/// 32 bytes for HS256).
pub const MIN_SECRET_LEN: usize = 32;

/// The smallest RSA modulus accepted, in bits (RFC 7518 section 3.3: 2048 or larger; NIST SP
/// 800-131A retired 1024-bit RSA).
pub const MIN_RSA_BITS: usize = 2048;

/// The largest JWKS file read, in bytes.
pub const MAX_JWKS_LEN: u64 = 1024 * 1024;

/// Why a [`VerifierBuilder`] or a JWKS reload failed. Never contains key material.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The HMAC secret is shorter than [`MIN_SECRET_LEN`].
    #[error("the JWT secret is {len} bytes long; at least {MIN_SECRET_LEN} are required")]
    SecretTooShort {
        /// The secret's length in bytes.
        len: usize,
    },
    /// Neither a secret, a public key nor a JWKS file was configured.
    #[error("no JWT key configured: set a secret, a public key or a JWKS file")]
    NoKey,
    /// The configured algorithm list is empty.
    #[error("no JWT algorithm configured")]
    NoAlgorithms,
    /// An algorithm is configured but no key of its kind is (and no JWKS file could supply one).
    #[error("JWT algorithm {0} is configured but no key of its kind is")]
    NoKeyForAlgorithm(Algorithm),
    /// A PEM public key is not an RSA, EC (P-256/P-384) or Ed25519 public key.
    #[error("JWT public key #{index} is not a PEM RSA, EC or Ed25519 public key")]
    InvalidPublicKey {
        /// Which key, counting the `public_key_pem` calls from 0.
        index: usize,
    },
    /// An RSA public key is smaller than [`MIN_RSA_BITS`].
    #[error(
        "JWT public key #{index} is a {bits}-bit RSA key; at least {MIN_RSA_BITS} bits are required"
    )]
    WeakRsaKey {
        /// Which key, counting the `public_key_pem` calls from 0.
        index: usize,
        /// Its modulus size in bits.
        bits: usize,
    },
    /// The JWKS file could not be read.
    #[error("cannot read the JWKS file {}: {source}", path.display())]
    JwksIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The JWKS file is not a usable key set.
    #[error("the JWKS file {} is unusable: {detail}", path.display())]
    Jwks {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// One verification key and what it may verify.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    family: Family,
    /// The JWK's own `alg`, which restricts the key to that one algorithm.
    only: Option<Algorithm>,
    key: DecodingKey,
}

impl Key {
    fn accepts(&self, alg: Algorithm) -> bool {
        self.family == alg.family() && self.only.is_none_or(|only| only == alg)
    }
}

/// The keys loaded from a JWKS file, and the bytes they came from (to detect changes).
struct JwksKeys {
    content: Vec<u8>,
    keys: Vec<Key>,
    skipped: usize,
}

struct JwksSource {
    path: PathBuf,
    current: RwLock<Arc<JwksKeys>>,
}

/// Builds a [`Verifier`]. Get one from [`Verifier::builder`].
#[derive(Default)]
#[must_use]
pub struct VerifierBuilder {
    secret: Option<Vec<u8>>,
    pems: Vec<Vec<u8>>,
    jwks: Option<PathBuf>,
    algorithms: Option<Vec<Algorithm>>,
    leeway: u64,
    issuers: Vec<String>,
    audiences: Vec<String>,
}

impl fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("public_keys", &self.pems.len())
            .field("jwks", &self.jwks)
            .field("algorithms", &self.algorithms)
            .field("leeway", &self.leeway)
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .finish()
    }
}

impl VerifierBuilder {
    /// The shared secret for HS256/384/512 (raw bytes, at least [`MIN_SECRET_LEN`]).
    pub fn hmac_secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.secret = Some(secret.as_ref().to_vec());
        self
    }

    /// Adds a PEM public key (`-----BEGIN PUBLIC KEY-----`, or `BEGIN RSA PUBLIC KEY`): RSA for
    /// RS*/PS*, EC P-256/P-384 for ES256/ES384, Ed25519 for EdDSA. May be called several times.
    pub fn public_key_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.pems.push(pem.as_ref().to_vec());
        self
    }

    /// A JWKS file (`{"keys": [...]}`): keys are chosen by the token's `kid`; several keys
    /// may be live at once. [`Verifier::reload_if_changed`] picks up a new version.
    pub fn jwks_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.jwks = Some(path.into());
        self
    }

    /// The accepted algorithms. The token's `alg` must be one of them.
    ///
    /// Default: HS256 for a secret, every algorithm of a PEM key's kind (RS*/PS*, ES*, EdDSA),
    /// and every asymmetric algorithm for a JWKS file; never `none`.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        let mut list: Vec<Algorithm> = algorithms.into_iter().collect();
        list.sort_unstable();
        list.dedup();
        self.algorithms = Some(list);
        self
    }

    /// Clock-skew allowance for `exp` and `nbf`, in whole seconds (default 0).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.as_secs();
        self
    }

    /// Adds an accepted issuer. Once one is set, `iss` is required and must be one of them.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Adds an accepted audience. Once one is set, `aud` is required and must name one of them.
    /// With none set, `aud` is only type-checked.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Checks the configuration, parses the keys and reads the JWKS file.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first problem: a short secret, an unparsable key, an
    /// unreadable or keyless JWKS file, no key at all, or an algorithm without a key.
    pub fn build(self) -> Result<Verifier, ConfigError> {
        ensure_crypto_provider();
        let mut static_keys = Vec::new();
        if let Some(secret) = &self.secret {
            if secret.len() < MIN_SECRET_LEN {
                return Err(ConfigError::SecretTooShort { len: secret.len() });
            }
            let key = DecodingKey::from_secret(secret)
                .map_err(|_| ConfigError::SecretTooShort { len: 0 })?;
            static_keys.push(Key {
                kid: None,
                family: Family::Hmac,
                only: None,
                key,
            });
        }
        for (index, pem) in self.pems.iter().enumerate() {
            let key = DecodingKey::from_rsa_pem(pem)
                .or_else(|_| DecodingKey::from_ec_pem(pem))
                .or_else(|_| DecodingKey::from_ed_pem(pem))
                .map_err(|_| ConfigError::InvalidPublicKey { index })?;
            let family = Family::of_jwt(key.family());
            if family == Family::Rsa {
                let bits = rsa_bits(&key).unwrap_or(0);
                if bits < MIN_RSA_BITS {
                    return Err(ConfigError::WeakRsaKey { index, bits });
                }
            }
            static_keys.push(Key {
                kid: None,
                family,
                only: None,
                key,
            });
        }
        if static_keys.is_empty() && self.jwks.is_none() {
            return Err(ConfigError::NoKey);
        }

        let algorithms = match self.algorithms {
            Some(list) if list.is_empty() => return Err(ConfigError::NoAlgorithms),
            Some(list) => list,
            None => default_algorithms(&static_keys, self.jwks.is_some()),
        };
        if self.jwks.is_none()
            && let Some(&alg) = algorithms
                .iter()
                .find(|alg| !static_keys.iter().any(|k| k.family == alg.family()))
        {
            return Err(ConfigError::NoKeyForAlgorithm(alg));
        }

        let required = Required {
            iss: !self.issuers.is_empty(),
            aud: !self.audiences.is_empty(),
        };
        let validations = [Family::Hmac, Family::Rsa, Family::Ec, Family::Ed]
            .into_iter()
            .filter_map(|family| {
                validation(family, &algorithms, &self.issuers, &self.audiences).map(|v| (family, v))
            })
            .collect();

        let jwks = match self.jwks {
            None => None,
            Some(path) => {
                let keys = load_jwks(&path, &algorithms)?;
                Some(JwksSource {
                    path,
                    current: RwLock::new(Arc::new(keys)),
                })
            }
        };
        Ok(Verifier {
            algorithms,
            leeway: self.leeway,
            required,
            issuers: self.issuers,
            audiences: self.audiences,
            static_keys,
            jwks,
            validations,
        })
    }
}

/// Verifies handshake tokens. Build it once at start ([`Verifier::builder`]) and share it
/// (`Arc<Verifier>`); every method takes `&self` and is safe to call from many threads.
///
/// [`verify`](Self::verify) applies these checks, in this order, and stops at the first
/// failure:
///
/// 1. shape: three base64url parts; header and claims are JSON objects => `malformed`;
/// 2. header: `alg` a string => else `malformed`; `alg` one of the configured algorithms
///    (so never `none`) => else `bad_algorithm`; no `crit` (this verifier understands no
///    extension) and `kid` a string when present => else `malformed`;
/// 3. claims: `exp` present and a NumericDate; `nbf`, `iat` NumericDates, `sub` and `iss`
///    strings, `aud` a string or an array of strings when present; `iss`/`aud` present when
///    configured => else `malformed`;
/// 4. signature against the keys that fit the `alg` (and the `kid`, when the token names a
///    key the verifier knows) => else `bad_signature`; an unknown `kid` with a JWKS and no
///    static key is `bad_signature`;
/// 5. `iss` and `aud` against the configured values => `bad_issuer`, `bad_audience`;
/// 6. time against the caller's `now`: `now >= exp + leeway` => `expired`,
///    `now + leeway < nbf` => `not_yet_valid`.
pub struct Verifier {
    algorithms: Vec<Algorithm>,
    leeway: u64,
    required: Required,
    issuers: Vec<String>,
    audiences: Vec<String>,
    static_keys: Vec<Key>,
    jwks: Option<JwksSource>,
    validations: Vec<(Family, Validation)>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let jwks = self.jwks.as_ref().map(|source| {
            let keys = source.snapshot();
            (source.path.clone(), keys.keys.len(), keys.skipped)
        });
        f.debug_struct("Verifier")
            .field("algorithms", &self.algorithms)
            .field("leeway", &self.leeway)
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .field("static_keys", &self.static_keys.len())
            .field("jwks (path, keys, skipped)", &jwks)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Starts a configuration.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// The accepted algorithms.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// The leeway for `exp`/`nbf`, in seconds.
    pub fn leeway(&self) -> u64 {
        self.leeway
    }

    /// Verifies a token at time `now` (pass `SystemTime::now()` in the server, any instant in
    /// tests). See the type's documentation for the checks and their order.
    ///
    /// # Errors
    ///
    /// The [`Rejection`] of the first check that fails.
    pub fn verify(&self, token: &Token, now: SystemTime) -> Result<Claims, Rejection> {
        let text = token.as_str();
        let mut parts = text.split('.');
        let (Some(header), Some(payload), Some(_signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::malformed("not three dot-separated parts"));
        };
        let header = decode_object(header, HEADER_ERRORS)?;
        let alg = match header.get("alg") {
            Some(Value::String(name)) => Algorithm::from_header(name)
                .filter(|alg| self.algorithms.contains(alg))
                .ok_or(Rejection::BadAlgorithm)?,
            Some(_) => return Err(Rejection::malformed("alg is not a string")),
            None => return Err(Rejection::malformed("header has no alg")),
        };
        if header.contains_key("crit") {
            return Err(Rejection::malformed("unsupported crit header"));
        }
        let kid = match header.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(Rejection::malformed("kid is not a string")),
        };
        let claims = Claims::from_map(decode_object(payload, CLAIMS_ERRORS)?, self.required)?;

        self.check_signature(text, alg, kid)?;

        let now = unix_seconds(now);
        if now >= claims.exp().saturating_add(self.leeway) {
            return Err(Rejection::Expired);
        }
        if claims
            .nbf()
            .is_some_and(|nbf| now.saturating_add(self.leeway) < nbf)
        {
            return Err(Rejection::NotYetValid);
        }
        Ok(claims)
    }

    /// Verifies a replacement token (the `auth` event): as [`verify`](Self::verify), and its
    /// `sub` must equal `current_sub`, the `sub` of the socket's current claims.
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify), or [`Rejection::SubMismatch`] (reason `sub_mismatch`).
    pub fn verify_refresh(
        &self,
        token: &Token,
        now: SystemTime,
        current_sub: Option<&str>,
    ) -> Result<Claims, Rejection> {
        let claims = self.verify(token, now)?;
        if claims.sub() != current_sub {
            return Err(Rejection::SubMismatch);
        }
        Ok(claims)
    }

    /// When a socket holding `claims` must be cut off: `exp + leeway`, in seconds since the
    /// Unix epoch. The first instant at which [`verify`](Self::verify) would say `expired`.
    pub fn expires_at(&self, claims: &Claims) -> u64 {
        claims.exp().saturating_add(self.leeway)
    }

    /// Re-reads the JWKS file and swaps in its keys when its content changed.
    ///
    /// Returns `Ok(true)` when new keys are live, `Ok(false)` when the content is unchanged
    /// or no JWKS file is configured. Tokens being verified concurrently see either the old
    /// or the new key set, never a mix. The file is read whole (at most [`MAX_JWKS_LEN`]) and
    /// compared byte for byte, so a change within one mtime tick is not missed.
    ///
    /// Call it periodically (every few seconds) from a blocking-safe context, e.g.
    /// `tokio::task::spawn_blocking` inside an interval loop, or on `SIGHUP`. For rotation,
    /// publish the new key next to the old one, wait for one reload period, switch the issuer
    /// to the new key, and remove the old key after the longest token lifetime.
    ///
    /// # Errors
    ///
    /// [`ConfigError::JwksIo`] or [`ConfigError::Jwks`] when the file cannot be read or holds
    /// no usable key; the previous keys then stay live.
    pub fn reload_if_changed(&self) -> Result<bool, ConfigError> {
        let Some(source) = &self.jwks else {
            return Ok(false);
        };
        let content = read_capped(&source.path)?;
        if content == source.snapshot().content {
            return Ok(false);
        }
        let keys = parse_jwks(&source.path, content, &self.algorithms)?;
        *source
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        Ok(true)
    }

    /// Number of JWKS keys live and skipped (wrong use, kind or algorithm), for logs; `None`
    /// without a JWKS file.
    pub fn jwks_key_counts(&self) -> Option<(usize, usize)> {
        self.jwks.as_ref().map(|source| {
            let keys = source.snapshot();
            (keys.keys.len(), keys.skipped)
        })
    }

    fn check_signature(
        &self,
        text: &str,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<(), Rejection> {
        let jwks = self.jwks.as_ref().map(JwksSource::snapshot);
        let jwks_keys = jwks.as_deref().map_or(&[][..], |j| &j.keys[..]);
        let fitting = |k: &&Key| k.accepts(alg);

        // A kid the JWKS knows selects exactly that key. Otherwise try the static keys (they
        // have no kid), and, for a token without kid, every fitting JWKS key.
        let by_kid: Vec<&Key> = match kid {
            Some(kid) => jwks_keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            None => Vec::new(),
        };
        let candidates: Vec<&Key> = if !by_kid.is_empty() {
            by_kid.into_iter().filter(fitting).collect()
        } else if kid.is_some() {
            self.static_keys.iter().filter(fitting).collect()
        } else {
            self.static_keys
                .iter()
                .chain(jwks_keys)
                .filter(fitting)
                .collect()
        };
        if candidates.is_empty() {
            return Err(Rejection::bad_signature(match kid {
                Some(_) => "no key for this kid and algorithm",
                None => "no key for this algorithm",
            }));
        }
        let validation = self
            .validations
            .iter()
            .find(|(family, _)| *family == alg.family())
            .map(|(_, v)| v)
            .ok_or(Rejection::BadAlgorithm)?;

        let mut rejection = Rejection::bad_signature("signature does not verify");
        for key in candidates {
            match jsonwebtoken::decode::<serde::de::IgnoredAny>(text, &key.key, validation) {
                Ok(_) => return Ok(()),
                Err(error) => {
                    rejection = map_error(error.kind());
                    if !matches!(rejection, Rejection::BadSignature { .. }) {
                        return Err(rejection);
                    }
                }
            }
        }
        Err(rejection)
    }
}

impl JwksSource {
    fn snapshot(&self) -> Arc<JwksKeys> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

fn map_error(kind: &ErrorKind) -> Rejection {
    match kind {
        ErrorKind::InvalidIssuer => Rejection::BadIssuer,
        ErrorKind::InvalidAudience => Rejection::BadAudience,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName => Rejection::BadAlgorithm,
        ErrorKind::ExpiredSignature => Rejection::Expired,
        ErrorKind::ImmatureSignature => Rejection::NotYetValid,
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_)
        | ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_)
        | ErrorKind::InvalidSubject => Rejection::malformed("rejected by the JWT decoder"),
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidKeyFormat => Rejection::bad_signature("key does not fit the token"),
        _ => Rejection::bad_signature("signature does not verify"),
    }
}

/// Decodes one base64url part into a JSON object; `errors` are the two details to report.
fn decode_object(
    part: &str,
    (not_base64, not_object): (&'static str, &'static str),
) -> Result<Map<String, Value>, Rejection> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Rejection::malformed(not_base64))?;
    serde_json::from_slice(&bytes).map_err(|_| Rejection::malformed(not_object))
}

const HEADER_ERRORS: (&str, &str) = ("header is not base64url", "header is not a JSON object");
const CLAIMS_ERRORS: (&str, &str) = ("claims are not base64url", "claims are not a JSON object");

fn unix_seconds(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn default_algorithms(static_keys: &[Key], jwks: bool) -> Vec<Algorithm> {
    let mut list: Vec<Algorithm> = Algorithm::ALL
        .into_iter()
        .filter(|alg| {
            let family = alg.family();
            let from_static = static_keys.iter().any(|k| {
                k.family == family && (family != Family::Hmac || *alg == Algorithm::HS256)
            });
            from_static || (jwks && family != Family::Hmac)
        })
        .collect();
    list.sort_unstable();
    list
}

/// jsonwebtoken's checks for one key family: signature, `alg` within the family, `iss`,
/// `aud`. Its own `exp`/`nbf` checks read the system clock, so they are off; ours use `now`.
fn validation(
    family: Family,
    algorithms: &[Algorithm],
    issuers: &[String],
    audiences: &[String],
) -> Option<Validation> {
    let algs: Vec<_> = algorithms
        .iter()
        .filter(|alg| alg.family() == family)
        .map(|alg| alg.to_jwt())
        .collect();
    let first = *algs.first()?;
    let mut v = Validation::new(first);
    v.algorithms = algs;
    v.validate_exp = false;
    v.validate_nbf = false;
    v.leeway = 0;
    let mut required: HashSet<String> = HashSet::from(["exp".to_owned()]);
    if !issuers.is_empty() {
        v.set_issuer(issuers);
        required.insert("iss".to_owned());
    }
    if audiences.is_empty() {
        v.validate_aud = false;
    } else {
        v.set_audience(audiences);
        required.insert("aud".to_owned());
    }
    v.required_spec_claims = required;
    Some(v)
}

fn read_capped(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let io = |source| ConfigError::JwksIo {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut content = Vec::new();
    file.take(MAX_JWKS_LEN + 1)
        .read_to_end(&mut content)
        .map_err(io)?;
    if content.len() as u64 > MAX_JWKS_LEN {
        return Err(ConfigError::Jwks {
            path: path.to_owned(),
            detail: format!("larger than {MAX_JWKS_LEN} bytes"),
        });
    }
    Ok(content)
}

fn load_jwks(path: &Path, algorithms: &[Algorithm]) -> Result<JwksKeys, ConfigError> {
    let content = read_capped(path)?;
    parse_jwks(path, content, algorithms)
}

fn parse_jwks(
    path: &Path,
    content: Vec<u8>,
    algorithms: &[Algorithm],
) -> Result<JwksKeys, ConfigError> {
    let set: JwkSet = serde_json::from_slice(&content).map_err(|e| ConfigError::Jwks {
        path: path.to_owned(),
        detail: format!("not a JWK set ({})", e.classify_name()),
    })?;
    let total = set.keys.len();
    let keys: Vec<Key> = set
        .keys
        .iter()
        .filter_map(|jwk| usable_key(jwk, algorithms))
        .collect();
    if keys.is_empty() {
        return Err(ConfigError::Jwks {
            path: path.to_owned(),
            detail: format!("none of its {total} keys fits the configured algorithms"),
        });
    }
    Ok(JwksKeys {
        content,
        skipped: total - keys.len(),
        keys,
    })
}

/// A JWK as a verification key, or `None` when it is for encryption, of an unsupported kind,
/// restricted to an algorithm that is not configured, of a kind no configured algorithm
/// uses (a symmetric key where only asymmetric algorithms are accepted), or a short secret.
fn usable_key(jwk: &Jwk, algorithms: &[Algorithm]) -> Option<Key> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    let only = match jwk.common.key_algorithm {
        None => None,
        Some(key_alg) => {
            let alg = Algorithm::from_header(&key_alg.to_string())?;
            algorithms.contains(&alg).then_some(alg)?;
            Some(alg)
        }
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    let family = Family::of_jwt(key.family());
    if !algorithms.iter().any(|alg| alg.family() == family) {
        return None;
    }
    if family == Family::Hmac && key.try_get_as_bytes().ok()?.len() < MIN_SECRET_LEN {
        return None;
    }
    if family == Family::Rsa && rsa_bits(&key).is_none_or(|bits| bits < MIN_RSA_BITS) {
        return None;
    }
    Some(Key {
        kid: jwk.common.key_id.clone(),
        family,
        only,
        key,
    })
}

/// The size in bits of an RSA key's modulus: from the JWK's `n`, or from the PKCS#1
/// `RSAPublicKey` DER a PEM key holds. `None` when it cannot be read.
fn rsa_bits(key: &DecodingKey) -> Option<usize> {
    let modulus = match key.kind() {
        DecodingKeyKind::RsaModulusExponent { n, .. } => n.as_slice(),
        DecodingKeyKind::SecretOrDer(der) => pkcs1_modulus(der)?,
    };
    let significant = modulus.get(modulus.iter().position(|&b| b != 0)?..)?;
    let first = significant.first()?;
    Some((significant.len() - 1) * 8 + (8 - first.leading_zeros() as usize))
}

/// The modulus bytes of a DER `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent
/// INTEGER }`.
fn pkcs1_modulus(der: &[u8]) -> Option<&[u8]> {
    let (tag, body, _) = der_element(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, modulus, _) = der_element(body)?;
    (tag == 0x02).then_some(modulus)
}

/// One DER element: its tag, its contents and what follows it.
fn der_element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(count)?;
        let len = bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, rest)
    };
    let (body, rest) = rest.split_at_checked(len)?;
    Some((tag, body, rest))
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "wrong shape",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

/// Installs jsonwebtoken's RustCrypto backend unless a provider is already chosen (a build
/// that also enables `aws_lc_rs` elsewhere would otherwise have none and panic on decode).
pub(crate) fn ensure_crypto_provider() {
    if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
        // Losing a race to another installer is fine: some provider is then installed.
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER,
        );
    }
}
