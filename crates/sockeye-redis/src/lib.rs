//! A Redis cluster adapter for sockeye, wire-compatible with Node's `@socket.io/redis-adapter`
//! 8.3 in its classic (`createAdapter`, PUBLISH/PSUBSCRIBE) and sharded
//! (`createShardedAdapter`, SPUBLISH/SSUBSCRIBE) modes, so that sockeye nodes and Node
//! `socket.io` nodes on one Redis behave as one cluster.
//!
//! The crate is being built in steps (issue 12): the sans-IO wire format first, then the
//! adapter runtime on a Redis client.

pub mod wire;
