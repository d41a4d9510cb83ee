//! The sans-IO Engine.IO session: heartbeat, upgrade, outbound queue, limits and close reasons.
//!
//! Nothing in this module performs I/O or reads a clock: every input carries `now: Instant`,
//! and every output is something the caller pulls ([`Session::poll_transmit`],
//! [`Session::poll_get_response`], [`Session::poll_timeout`], [`Session::poll_event`]).
//! The [`server`](crate#features) driver is one user of it; another HTTP stack could drive the
//! same sessions.
//!
//! # Call protocol
//!
//! 1. [`Session::open`] when a handshake succeeds.
//! 2. For every input (a decoded packet, a polling request, a closed transport, a command of
//!    the application, a timer that fired) call the matching `handle_*` method or command.
//! 3. After every input, drain the outputs: [`Session::poll_event`] until `None` (deliver them
//!    upward), [`Session::poll_transmit`] for the WebSocket (write them) or
//!    [`Session::poll_get_response`] for a waiting polling GET (a body, or the error to answer
//!    it with), and re-arm one timer at [`Session::poll_timeout`].
//! 4. When [`Session::poll_event`] yields [`Event::Closed`], the session is over: send what
//!    remains, then drop it.

mod config;
mod session;
mod sid;

pub use config::{SessionConfig, SlowConsumerPolicy};
pub use session::{
    CloseReason, Event, ProtocolError, SendError, Session, Transmit, Transport, UPGRADE_GET_HOLD,
};
pub use sid::{InvalidSid, Sid};
