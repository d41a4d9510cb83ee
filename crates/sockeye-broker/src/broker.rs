//! [`Broker`]: the namespaces of one server and the entry point for engine sessions.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sockeye_codec::Utf8Bytes;
use sockeye_codec::socketio::Limits;

use crate::adapter::{AdapterFactory, MemoryAdapter};
use crate::connection::Connection;
use crate::handler::TypeMap;
use crate::handshake::Handshake;
use crate::namespace::{
    ConnectGuard, DEFAULT_ACK_TIMEOUT, Namespace, NamespaceBuilder, NsConfig, Registry,
};
use crate::transport::{EngineInfo, Transport};

/// The default of [`BrokerConfig::attachment_timeout`].
pub const DEFAULT_ATTACHMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Broker settings, defaults equal to the reference server.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    pub(crate) connect_timeout: Duration,
    pub(crate) attachment_timeout: Duration,
    pub(crate) ack_timeout: Duration,
    pub(crate) limits: Limits,
    pub(crate) cleanup_dynamic: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(45),
            attachment_timeout: DEFAULT_ATTACHMENT_TIMEOUT,
            ack_timeout: DEFAULT_ACK_TIMEOUT,
            limits: Limits::default(),
            cleanup_dynamic: true,
        }
    }
}

impl BrokerConfig {
    /// How long a session may stay without joining any namespace (default 45 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long the attachments of a binary packet may take to arrive after its header
    /// (default 10 s). Past it the connection is closed as a protocol violation, so a header
    /// whose attachments never come does not hold its bytes for the life of the session; the
    /// reference has no such bound.
    #[must_use]
    pub fn attachment_timeout(mut self, timeout: Duration) -> Self {
        self.attachment_timeout = timeout;
        self
    }

    /// The ack timeout of emits that set none (default 5 s).
    #[must_use]
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// Whether a dynamic namespace is removed once its last socket leaves (default `true`, so
    /// names a client invents do not pile up; the reference's
    /// `cleanupEmptyChildNamespaces`, whose default is `false`).
    #[must_use]
    pub fn cleanup_empty_dynamic_namespaces(mut self, cleanup: bool) -> Self {
        self.cleanup_dynamic = cleanup;
        self
    }

    /// Decoding limits for Socket.IO packets (attachment count and bytes, namespace length).
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// What namespaces, sockets and connections of one broker share.
pub(crate) struct BrokerShared {
    pub(crate) config: BrokerConfig,
    pub(crate) state: TypeMap,
    pub(crate) adapter_factory: AdapterFactory,
}

/// How a dynamic namespace recognizes the names it serves.
#[derive(Clone)]
pub struct NamespaceMatcher(MatchFn);

type MatchFn = Arc<dyn Fn(&str, &Handshake) -> bool + Send + Sync>;

impl NamespaceMatcher {
    /// Names matching a pattern where `*` stands for any run of characters other than `/`
    /// (`/org-*`, `/rooms/*/chat`).
    pub fn glob(pattern: &str) -> Self {
        let pattern = pattern.to_owned();
        Self(Arc::new(move |name, _| glob_match(&pattern, name)))
    }

    /// Names for which `predicate(name, handshake)` holds.
    pub fn predicate(predicate: impl Fn(&str, &Handshake) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(predicate))
    }
}

impl fmt::Debug for NamespaceMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NamespaceMatcher")
    }
}

/// `*` matches any run of characters but `/`.
fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((prefix, rest)) => {
            let Some(tail) = name.strip_prefix(prefix) else {
                return false;
            };
            // Try every split of `tail` whose starred part has no '/'.
            let stop = tail.find('/').unwrap_or(tail.len());
            (0..=stop).any(|i| tail.is_char_boundary(i) && glob_match(rest, &tail[i..]))
        }
    }
}

/// Builds a [`Broker`].
pub struct BrokerBuilder {
    config: BrokerConfig,
    state: TypeMap,
    adapter: AdapterFactory,
    namespaces: Vec<(String, NsConfig)>,
    dynamic: Vec<(NamespaceMatcher, NsConfig)>,
}

impl fmt::Debug for BrokerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerBuilder")
            .field("config", &self.config)
            .field(
                "namespaces",
                &self.namespaces.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl BrokerBuilder {
    /// Sets the configuration.
    #[must_use]
    pub fn config(mut self, config: BrokerConfig) -> Self {
        self.config = config;
        self
    }

    /// Adds application state, which handlers take with [`State<S>`](crate::State). One value
    /// per type.
    #[must_use]
    pub fn state<S: Clone + Send + Sync + 'static>(mut self, state: S) -> Self {
        self.state.insert(state);
        self
    }

    /// Sets the adapter factory (default: [`MemoryAdapter`]).
    #[must_use]
    pub fn adapter(mut self, factory: AdapterFactory) -> Self {
        self.adapter = factory;
        self
    }

    /// Adds a namespace with a fixed name (`/` is the main one) and registers its handlers.
    /// A namespace name that does not start with `/` gets one.
    #[must_use]
    pub fn namespace(
        mut self,
        name: &str,
        build: impl FnOnce(NamespaceBuilder) -> NamespaceBuilder,
    ) -> Self {
        let name = if name.starts_with('/') {
            name.to_owned()
        } else {
            format!("/{name}")
        };
        let config = build(NamespaceBuilder::new()).into_config();
        self.namespaces.push((name, config));
        self
    }

    /// Adds a dynamic namespace: every name `matcher` accepts becomes a namespace on its first
    /// CONNECT, with these handlers (registered once, shared by every such namespace).
    #[must_use]
    pub fn dynamic_namespace(
        mut self,
        matcher: NamespaceMatcher,
        build: impl FnOnce(NamespaceBuilder) -> NamespaceBuilder,
    ) -> Self {
        self.dynamic
            .push((matcher, build(NamespaceBuilder::new()).into_config()));
        self
    }

    /// Builds the broker.
    pub fn build(self) -> Broker {
        let shared = Arc::new(BrokerShared {
            config: self.config,
            state: self.state,
            adapter_factory: self.adapter,
        });
        let mut fixed = HashMap::new();
        for (name, config) in self.namespaces {
            let ns = Namespace::new(
                Utf8Bytes::from(name.as_str()),
                Arc::new(config),
                shared.clone(),
                None,
            );
            fixed.insert(name.into_boxed_str(), ns);
        }
        let dynamic = self
            .dynamic
            .into_iter()
            .map(|(m, c)| (m, Arc::new(c)))
            .collect();
        Broker {
            inner: Arc::new(BrokerInner {
                shared,
                fixed,
                dynamic,
                children: Arc::new(RwLock::new(HashMap::new())),
            }),
        }
    }
}

/// The Socket.IO server state: namespaces, their sockets and rooms. Cheap to clone (`Arc`
/// inside).
///
/// The server wires each Engine.IO session into it with [`Broker::on_engine_open`], then drives
/// the returned [`Connection`].
#[derive(Clone)]
pub struct Broker {
    inner: Arc<BrokerInner>,
}

struct BrokerInner {
    shared: Arc<BrokerShared>,
    fixed: HashMap<Box<str>, Namespace>,
    dynamic: Vec<(NamespaceMatcher, Arc<NsConfig>)>,
    children: Arc<Registry>,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("namespaces", &self.inner.fixed.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// A builder with the default configuration, no namespace and the in-memory adapter.
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder {
            config: BrokerConfig::default(),
            state: TypeMap::default(),
            adapter: MemoryAdapter::factory(),
            namespaces: Vec::new(),
            dynamic: Vec::new(),
        }
    }

    /// A new Engine.IO session opened: returns the [`Connection`] its driver feeds. `now` starts
    /// the connect timeout.
    pub fn on_engine_open(
        &self,
        transport: Arc<dyn Transport>,
        info: EngineInfo,
        now: Instant,
    ) -> Connection {
        Connection::new(self.clone(), transport, info, now)
    }

    /// A namespace by name: a fixed one, or a dynamic one already created.
    pub fn namespace(&self, name: &str) -> Option<Namespace> {
        if let Some(ns) = self.inner.fixed.get(name) {
            return Some(ns.clone());
        }
        self.inner
            .children
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Every namespace that exists now (fixed ones and created dynamic ones).
    pub fn namespaces(&self) -> Vec<Namespace> {
        let mut all: Vec<Namespace> = self.inner.fixed.values().cloned().collect();
        all.extend(
            self.inner
                .children
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .values()
                .cloned(),
        );
        all
    }

    /// The configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.inner.shared.config
    }

    pub(crate) fn shared(&self) -> &Arc<BrokerShared> {
        &self.inner.shared
    }

    /// The namespace a CONNECT names: fixed, existing dynamic, or a new dynamic one. The
    /// guard keeps a dynamic namespace alive until the CONNECT is finished.
    pub(crate) fn resolve(
        &self,
        name: &str,
        handshake: &Handshake,
    ) -> Option<(Namespace, ConnectGuard)> {
        if let Some(ns) = self.inner.fixed.get(name) {
            return Some((ns.clone(), ns.begin_connect()));
        }
        {
            let children = self
                .inner
                .children
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(ns) = children.get(name) {
                return Some((ns.clone(), ns.begin_connect()));
            }
        }
        let (_, config) = self
            .inner
            .dynamic
            .iter()
            .find(|(matcher, _)| (matcher.0)(name, handshake))?;
        let mut children = self
            .inner
            .children
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let registry = self
            .inner
            .shared
            .config
            .cleanup_dynamic
            .then(|| Arc::downgrade(&self.inner.children));
        let ns = children.entry(Box::from(name)).or_insert_with(|| {
            Namespace::new(
                Utf8Bytes::from(name),
                config.clone(),
                self.inner.shared.clone(),
                registry,
            )
        });
        let guard = ns.begin_connect();
        Some((ns.clone(), guard))
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn glob_matches_one_segment_per_star() {
        assert!(glob_match("/org-*", "/org-acme"));
        assert!(glob_match("/org-*", "/org-"));
        assert!(!glob_match("/org-*", "/org-a/b"));
        assert!(glob_match("/rooms/*/chat", "/rooms/42/chat"));
        assert!(!glob_match("/rooms/*/chat", "/rooms/42/talk"));
        assert!(glob_match("/exact", "/exact"));
        assert!(!glob_match("/exact", "/exactly"));
    }
}
