//! Shared test support of the sockeye-redis integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod client;
pub mod redis;
