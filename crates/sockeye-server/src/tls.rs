//! TLS (HTTPS and WSS) with rustls and the `ring` provider, from PEM files.

use std::io::BufReader;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::{ConfigError, TlsFiles};

/// Loads a certificate chain and its private key and builds the acceptor: TLS 1.2 and 1.3,
/// ALPN `http/1.1` (the server speaks HTTP/1.1 and WebSocket).
///
/// # Errors
///
/// [`ConfigError::Tls`] naming `--tls-cert` or `--tls-key` when a file cannot be read, holds no
/// PEM certificate or key, or the key does not fit the certificate.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ConfigError> {
    let certs = load_certs(&files.cert)?;
    let key = load_key(&files.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("--tls-cert", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_error("--tls-key", format!("does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The TLS settings of a running server: the acceptor for new connections, swapped whole
/// when the files are read again ([`ReloadableTls::reload`], on SIGHUP in the binary).
/// Connections already open keep the configuration they were accepted with.
pub struct ReloadableTls {
    files: TlsFiles,
    current: RwLock<TlsAcceptor>,
}

impl std::fmt::Debug for ReloadableTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadableTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ReloadableTls {
    /// Loads `files` (see [`acceptor`]).
    ///
    /// # Errors
    /// As [`acceptor`].
    pub fn load(files: &TlsFiles) -> Result<Self, ConfigError> {
        Ok(Self {
            current: RwLock::new(acceptor(files)?),
            files: files.clone(),
        })
    }

    /// The acceptor for the next connection (a cheap clone of an `Arc`).
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the certificate and key files again and, when both load and fit, uses them for
    /// every connection accepted from now on.
    ///
    /// # Errors
    /// As [`acceptor`]; the configuration in use is then kept unchanged.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let fresh = acceptor(&self.files)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }
}

fn tls_error(setting: &'static str, reason: String) -> ConfigError {
    ConfigError::Tls { setting, reason }
}

fn open(setting: &'static str, path: &Path) -> Result<BufReader<std::fs::File>, ConfigError> {
    std::fs::File::open(path)
        .map(BufReader::new)
        .map_err(|e| tls_error(setting, format!("cannot read {}: {e}", path.display())))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let mut reader = open("--tls-cert", path)?;
    let certs = rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error("--tls-cert", format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(tls_error(
            "--tls-cert",
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let mut reader = open("--tls-key", path)?;
    rustls_pemfile::private_key(&mut reader)
        .map_err(|e| tls_error("--tls-key", format!("{}: {e}", path.display())))?
        .ok_or_else(|| {
            tls_error(
                "--tls-key",
                format!(
                    "{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                    path.display()
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn loads_a_generated_certificate_and_refuses_bad_files() {
        let dir = std::env::temp_dir().join(format!("sockeye-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["other".to_owned()]).unwrap();
        let cert_pem = write(&dir, "cert.pem", &cert.cert.pem());
        let key_pem = write(&dir, "key.pem", &cert.signing_key.serialize_pem());
        let other_key = write(&dir, "other.pem", &other.signing_key.serialize_pem());
        let empty = write(&dir, "empty.pem", "");

        let ok = TlsFiles {
            cert: cert_pem.clone(),
            key: key_pem.clone(),
        };
        assert!(acceptor(&ok).is_ok());

        let cases = [
            (empty.clone(), key_pem.clone(), "--tls-cert"),
            (cert_pem.clone(), empty, "--tls-key"),
            (cert_pem.clone(), other_key, "--tls-key"),
            (key_pem, cert_pem.clone(), "--tls-cert"),
            (dir.join("missing.pem"), cert_pem, "--tls-cert"),
        ];
        for (cert, key, setting) in cases {
            let files = TlsFiles { cert, key };
            let err = acceptor(&files).err().expect("refused").to_string();
            assert!(err.contains(setting), "{files:?}: {err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
