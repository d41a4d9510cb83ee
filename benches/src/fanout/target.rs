//! The server under test: an `http://` URL on a loopback address, nothing else.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A loopback Socket.IO server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` header value (`127.0.0.1:3000`).
    pub authority: String,
    /// The Socket.IO path, `/socket.io/` unless the URL names another.
    pub path: String,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetError {
    /// Not `http://host:port[/path]`.
    Malformed,
    /// A host that is not a loopback address: the generator only loads this machine.
    NotLoopback,
}

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Malformed => "expected a URL like http://127.0.0.1:3000",
            Self::NotLoopback => {
                "refusing a non-loopback host: load goes only to 127.0.0.0/8, localhost or [::1]"
            }
        })
    }
}

impl std::error::Error for TargetError {}

impl Target {
    /// Parses `http://HOST:PORT[/path]` (or `ws://`) where HOST is in 127.0.0.0/8, `localhost`
    /// or `[::1]`. A path other than `/` replaces the default `/socket.io/`.
    ///
    /// # Errors
    /// [`TargetError`] for anything else.
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("ws://"))
            .ok_or(TargetError::Malformed)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = authority.rsplit_once(':').ok_or(TargetError::Malformed)?;
        let port: u16 = port.parse().map_err(|_| TargetError::Malformed)?;
        let ip: IpAddr = match host {
            "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            h if h.starts_with('[') && h.ends_with(']') => h[1..h.len() - 1]
                .parse()
                .map_err(|_| TargetError::Malformed)?,
            h => h.parse().map_err(|_| TargetError::NotLoopback)?,
        };
        if !ip.is_loopback() {
            return Err(TargetError::NotLoopback);
        }
        let path = if path == "/" || path.is_empty() {
            "/socket.io/".to_owned()
        } else if path.ends_with('/') {
            path.to_owned()
        } else {
            format!("{path}/")
        };
        Ok(Self {
            addr: SocketAddr::new(ip, port),
            authority: authority.to_owned(),
            path,
        })
    }

    /// The WebSocket URL of an Engine.IO v4 session.
    pub fn websocket_url(&self) -> String {
        format!(
            "ws://{}{}?EIO=4&transport=websocket",
            self.authority, self.path
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_loopback() {
        let t = Target::parse("http://127.0.0.1:3000").unwrap();
        assert_eq!(t.addr, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(
            t.websocket_url(),
            "ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket"
        );
        assert!(Target::parse("http://localhost:1/").is_ok());
        assert!(Target::parse("http://127.8.9.10:1").is_ok());
        assert!(Target::parse("http://[::1]:3000").is_ok());
        assert_eq!(Target::parse("http://127.0.0.1:1/io").unwrap().path, "/io/");
    }

    #[test]
    fn refuses_everything_else() {
        for url in [
            "http://10.0.0.1:3000",
            "http://192.168.1.2:3000",
            "http://example.com:80",
            "http://[::2]:3000",
            "http://0.0.0.0:3000",
        ] {
            assert_eq!(Target::parse(url), Err(TargetError::NotLoopback), "{url}");
        }
        assert_eq!(
            Target::parse("https://127.0.0.1:1"),
            Err(TargetError::Malformed)
        );
        assert_eq!(
            Target::parse("http://127.0.0.1"),
            Err(TargetError::Malformed)
        );
    }
}
