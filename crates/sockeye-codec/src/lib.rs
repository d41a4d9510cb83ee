#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![warn(clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::indexing_slicing))]

mod json;
mod outgoing;
mod utf8;

pub mod engineio;
pub mod socketio;

pub use outgoing::{Frame, Outgoing};
pub use utf8::Utf8Bytes;
