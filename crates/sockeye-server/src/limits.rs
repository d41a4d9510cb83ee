//! The per-address connection cap and the client address (with the `--trust-proxy` rule).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};

use http::HeaderMap;

/// The address a connection is counted against: the TCP peer, or with `trust_proxy_hops = N`
/// (N > 0) the N-th address of `X-Forwarded-For` counted from the right: each of the N trusted
/// proxies appended the address it saw, so that entry was written by the outermost trusted
/// proxy; entries further left are whatever the client claimed. A chain shorter than N, or an
/// entry that is no address, means the header cannot be trusted: the peer address counts.
pub fn client_ip(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trust_proxy_hops: u32,
) -> Option<IpAddr> {
    if let Some(hops) = usize::try_from(trust_proxy_hops).ok().filter(|&h| h > 0)
        && let Some(ip) = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .map(|v| v.to_str().ok())
            .flat_map(|v| {
                // A header line that is not text poisons the chain: it yields one bad entry.
                v.unwrap_or("?").rsplit(',')
            })
            .nth(hops - 1)
            .and_then(|item| parse_forwarded_ip(item.trim()))
    {
        return Some(ip);
    }
    peer.map(|p| p.ip())
}

/// `203.0.113.7`, `203.0.113.7:1234`, `2001:db8::1` or `[2001:db8::1]:1234`.
fn parse_forwarded_ip(item: &str) -> Option<IpAddr> {
    if let Ok(ip) = item.parse::<IpAddr>() {
        return Some(ip);
    }
    item.parse::<SocketAddr>().ok().map(|s| s.ip())
}

/// Counts Engine.IO sessions per client address and refuses more than the cap.
///
/// Cheap to clone. Each admitted session holds a [`ConnectionPermit`]; dropping it frees the
/// slot.
#[derive(Debug, Clone)]
pub struct ConnectionLimiter {
    max: Option<NonZeroU32>,
    counts: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl ConnectionLimiter {
    /// A limiter allowing `max` sessions per address (`None`: no cap, only counting).
    pub fn new(max: Option<NonZeroU32>) -> Self {
        Self {
            max,
            counts: Arc::default(),
        }
    }

    /// Whether one more session from `ip` would be admitted now (a cheap early check, e.g. to
    /// answer the handshake with 403 before a session exists).
    pub fn has_room(&self, ip: IpAddr) -> bool {
        match self.max {
            None => true,
            Some(max) => self.lock().get(&ip).copied().unwrap_or(0) < max.get(),
        }
    }

    /// Admits one session from `ip`, or `None` when the address is at the cap.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<ConnectionPermit> {
        let mut counts = self.lock();
        let count = counts.entry(ip).or_insert(0);
        if self.max.is_some_and(|max| *count >= max.get()) {
            if *count == 0 {
                counts.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(ConnectionPermit {
            limiter: self.clone(),
            ip,
        })
    }

    /// Sessions currently admitted from `ip`.
    pub fn count(&self, ip: IpAddr) -> u32 {
        self.lock().get(&ip).copied().unwrap_or(0)
    }

    /// Addresses with at least one session.
    pub fn addresses(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One admitted session; frees its slot when dropped.
#[derive(Debug)]
pub struct ConnectionPermit {
    limiter: ConnectionLimiter,
    ip: IpAddr,
}

impl ConnectionPermit {
    /// The address it counts against.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.limiter.lock();
        if let Some(count) = counts.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn cap_and_release() {
        let limiter = ConnectionLimiter::new(NonZeroU32::new(2));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = limiter.try_acquire(ip).unwrap();
        let b = limiter.try_acquire(ip).unwrap();
        assert!(!limiter.has_room(ip));
        assert!(limiter.try_acquire(ip).is_none());
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limiter.try_acquire(other).is_some());
        drop(a);
        assert!(limiter.has_room(ip));
        let c = limiter.try_acquire(ip).unwrap();
        drop((b, c));
        assert_eq!(limiter.count(ip), 0);
        assert_eq!(limiter.addresses(), 0, "no entry left behind");
    }

    #[test]
    fn no_cap_counts_only() {
        let limiter = ConnectionLimiter::new(None);
        let ip: IpAddr = "::1".parse().unwrap();
        let permits: Vec<_> = (0..1000)
            .map(|_| limiter.try_acquire(ip).unwrap())
            .collect();
        assert_eq!(limiter.count(ip), 1000);
        drop(permits);
        assert_eq!(limiter.addresses(), 0);
    }

    #[test]
    fn forwarded_for_only_when_trusted() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 198.51.100.4"),
        );
        assert_eq!(
            client_ip(Some(peer), &headers, 0),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            client_ip(Some(peer), &headers, 1),
            Some("198.51.100.4".parse().unwrap())
        );
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("[2001:db8::1]:99"),
        );
        assert_eq!(
            client_ip(Some(peer), &headers, 1),
            Some("2001:db8::1".parse().unwrap())
        );
        headers.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(
            client_ip(Some(peer), &headers, 1),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(client_ip(None, &HeaderMap::new(), 1), None);
    }

    #[test]
    fn forwarded_for_hops_count_from_the_right() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        // The client forged the first entry; two trusted proxies appended the rest.
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.9"),
        );
        headers.append("x-forwarded-for", HeaderValue::from_static("10.0.0.7"));
        let ip = |hops| client_ip(Some(peer), &headers, hops).unwrap().to_string();
        assert_eq!(ip(0), "10.0.0.1");
        assert_eq!(ip(1), "10.0.0.7");
        assert_eq!(ip(2), "203.0.113.9");
        assert_eq!(ip(3), "6.6.6.6");
        // Shorter than the configured chain: not trusted.
        assert_eq!(ip(4), "10.0.0.1");
        assert_eq!(ip(u32::MAX), "10.0.0.1");
    }
}
