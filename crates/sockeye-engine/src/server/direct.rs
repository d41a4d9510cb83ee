//! Direct writes: a WebSocket on a plain TCP socket is written by whoever queues a message.
//!
//! The usual shape (one task per connection that a sender wakes up) costs a task wake-up, a
//! trip through the scheduler and often a sleeping worker thread's futex per recipient; on a
//! broadcast those are most of the user-space time. Here the session keeps the socket
//! (`Arc<TcpStream>`) and the frames not yet written ([`DirectOut`]), and the code that queued
//! a message writes it at once, without waiting (a non-blocking `sendmsg`), while it holds the
//! session's lock. Only when the socket would block does the connection's driver task take the
//! writing over: it waits for writability and drains the queue, then hands writing back.
//!
//! Inside a [`Batch`] (the driver of the *sending* connection opens one around each read's
//! worth of input) writes are deferred to the end of the batch: a sender whose read carried
//! thirty messages costs each recipient one vectored write of thirty frames, not thirty writes.
//!
//! Ending the transport (the close frame, the linger for the client's answer) always stays
//! with the driver: [`Session::poll_transmit_before_close`] lets the direct writer stop short
//! of the close.
//!
//! See `docs/decisions/0005-direct-writes.md`.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;

use super::engine::{EngineInner, Shared};
use super::websocket::{End, Linger, READ_CHUNK, handle_input, push_transmit};
use super::ws_frame::{FrameReader, FrameWriter};
use crate::proto::{Session, Transport};

/// The write side of a directly written WebSocket, kept in the session's lock.
pub(crate) struct DirectOut {
    stream: Arc<TcpStream>,
    /// Frames taken from the session but not yet (fully) written.
    writer: FrameWriter,
    /// Only the driver writes: a write would block or failed, or a close is due.
    driver_owns: bool,
    /// In a thread's [`Batch`], written when the batch ends.
    deferred: bool,
}

impl DirectOut {
    /// The driver starts out owning the writing (it has the open packet to send, and whatever
    /// was queued before the socket was ready).
    fn new(stream: Arc<TcpStream>, writer: FrameWriter) -> Self {
        Self {
            stream,
            writer,
            driver_owns: true,
            deferred: false,
        }
    }

    fn is_for(&self, stream: &Arc<TcpStream>) -> bool {
        Arc::ptr_eq(&self.stream, stream)
    }

    /// After an update of the session (lock held): writes what it queued, or defers that to
    /// the batch. Returns whether the driver must be woken.
    pub(crate) fn after_update(&mut self, session: &mut Session, shared: &Arc<Shared>) -> bool {
        if self.driver_owns {
            return session.has_ws_transmit();
        }
        if self.deferred || !session.has_ws_transmit() {
            return false;
        }
        if defer(shared) {
            self.deferred = true;
            return false;
        }
        self.write_queued(session)
    }

    /// The end of the batch this session was deferred to. Returns whether to wake the driver.
    pub(crate) fn flush_deferred(&mut self, session: &mut Session) -> bool {
        self.deferred = false;
        if self.driver_owns {
            // The driver was woken when it took over.
            return false;
        }
        self.write_queued(session)
    }

    /// Writes everything the session has queued, up to the close, without waiting. Returns
    /// `true` when the driver must take over (the socket would block or failed, or a close is
    /// due).
    fn write_queued(&mut self, session: &mut Session) -> bool {
        loop {
            if !self.refill(session) {
                if session.has_ws_transmit() {
                    self.driver_owns = true;
                    return true;
                }
                self.writer.release();
                return false;
            }
            match self.writer.try_write(&self.stream) {
                Ok(true) => {}
                Ok(false) | Err(_) => {
                    self.driver_owns = true;
                    return true;
                }
            }
        }
    }

    /// When everything taken before has been written, takes what the session queued since
    /// (up to the close). Returns whether there are frames to write.
    fn refill(&mut self, session: &mut Session) -> bool {
        if self.writer.is_empty() {
            while let Some(item) = session.poll_transmit_before_close(Transport::WebSocket) {
                push_transmit(&mut self.writer, item);
            }
        }
        !self.writer.is_empty()
    }
}

/// What the driver does next, decided under the session's lock.
pub(crate) enum DriverStep {
    /// Nothing is left to write: wait for input or a wake-up.
    Idle,
    /// Frames are left and the socket would block: wait for writability.
    Blocked,
    /// The transport ends: write these frames (a close frame last), then linger.
    Close(FrameWriter),
    /// Cut the connection now (a write failed, or the session closed with frames stuck).
    Cut,
    /// The session holds another socket now: this one is no longer its transport.
    Detached,
}

/// The driver's turn at writing (lock held).
pub(crate) fn driver_step(
    slot: &mut Option<DirectOut>,
    session: &mut Session,
    stream: &Arc<TcpStream>,
) -> DriverStep {
    let Some(out) = slot.as_mut().filter(|out| out.is_for(stream)) else {
        return DriverStep::Detached;
    };
    if !out.driver_owns {
        return DriverStep::Idle;
    }
    loop {
        if !out.refill(session) {
            if session.has_ws_transmit() {
                // The close: the driver writes it on its own, the session lets go.
                let mut writer = slot.take().map(|out| out.writer).unwrap_or_default();
                while let Some(item) = session.poll_transmit(Transport::WebSocket) {
                    if push_transmit(&mut writer, item).is_some() {
                        break;
                    }
                }
                return DriverStep::Close(writer);
            }
            out.driver_owns = false;
            out.writer.release();
            return DriverStep::Idle;
        }
        match out.writer.try_write(&out.stream) {
            Ok(true) => {}
            Ok(false) => {
                if session.close_reason().is_some_and(|r| !r.flushes_queue()) {
                    *slot = None;
                    return DriverStep::Cut;
                }
                return DriverStep::Blocked;
            }
            Err(_) => {
                *slot = None;
                return DriverStep::Cut;
            }
        }
    }
}

/// Takes this socket's write side out of the session (it is ending), with what it had not yet
/// written. `None` when the session no longer holds it.
pub(crate) fn detach(slot: &mut Option<DirectOut>, stream: &Arc<TcpStream>) -> Option<FrameWriter> {
    if slot.as_ref().is_some_and(|out| out.is_for(stream)) {
        slot.take().map(|out| out.writer)
    } else {
        None
    }
}

// ----- batches ------------------------------------------------------------------------------

#[derive(Default)]
struct BatchState {
    active: bool,
    deferred: Vec<Arc<Shared>>,
}

thread_local! {
    static BATCH: RefCell<BatchState> = RefCell::new(BatchState::default());
}

/// Defers direct writes made on this thread until it is dropped. Nested batches join the
/// outer one. Never hold one across an `.await`: the writes would wait for the next poll.
pub(crate) struct Batch {
    outermost: bool,
}

impl Batch {
    pub(crate) fn enter() -> Self {
        let outermost = BATCH
            .try_with(|state| {
                let mut state = state.borrow_mut();
                !std::mem::replace(&mut state.active, true)
            })
            .unwrap_or(false);
        Self { outermost }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if !self.outermost {
            return;
        }
        loop {
            let list = BATCH
                .try_with(|state| std::mem::take(&mut state.borrow_mut().deferred))
                .unwrap_or_default();
            if list.is_empty() {
                break;
            }
            let mut list = list;
            for shared in &list {
                shared.flush_deferred();
            }
            list.clear();
            let _ = BATCH.try_with(|state| {
                let mut state = state.borrow_mut();
                if state.deferred.is_empty() && list.capacity() <= 4096 {
                    state.deferred = list;
                }
            });
        }
        let _ = BATCH.try_with(|state| state.borrow_mut().active = false);
    }
}

/// Adds `shared` to this thread's batch, if one is open.
fn defer(shared: &Arc<Shared>) -> bool {
    BATCH
        .try_with(|state| {
            let Ok(mut state) = state.try_borrow_mut() else {
                return false;
            };
            if state.active {
                state.deferred.push(Arc::clone(shared));
                true
            } else {
                false
            }
        })
        .unwrap_or(false)
}

// ----- the driver ---------------------------------------------------------------------------

/// The task of a directly written WebSocket: reads frames into the session, writes only when
/// a direct write would have blocked, and ends the transport.
pub(crate) async fn drive(
    stream: TcpStream,
    leftover: Bytes,
    inner: &Arc<EngineInner>,
    shared: &Arc<Shared>,
    open: Option<Bytes>,
) {
    let stream = Arc::new(stream);
    let mut reader = FrameReader::new(inner.session_config.max_payload);
    let mut rbuf = BytesMut::new();
    let mut first = FrameWriter::default();
    if let Some(open) = open {
        first.text(open);
    }
    shared.with_direct(|_, slot| *slot = Some(DirectOut::new(Arc::clone(&stream), first)));

    let mut end: Option<End> = None;
    let mut clean = false;
    // Set once the session has let go of this socket (see websocket::drive).
    let mut detached = false;
    // Frames to write before the socket closes (the close frame last).
    let mut closing = FrameWriter::default();

    // Even empty, `leftover` is a view of hyper's whole read buffer: copy it and let it go.
    rbuf.extend_from_slice(&leftover);
    drop(leftover);
    if !rbuf.is_empty() {
        end = input(
            &mut reader,
            &mut rbuf,
            shared,
            &stream,
            &mut closing,
            &mut detached,
        );
        if rbuf.is_empty() {
            rbuf = BytesMut::new();
        }
    }
    while end.is_none() {
        if inner.aborted.load(Ordering::Acquire) {
            end = Some(End::Cut);
            break;
        }
        let blocked = match shared.with_direct(|session, slot| driver_step(slot, session, &stream))
        {
            DriverStep::Idle => false,
            DriverStep::Blocked => true,
            DriverStep::Close(writer) => {
                closing = writer;
                detached = true;
                end = Some(End::Closing);
                break;
            }
            DriverStep::Cut => {
                end = Some(End::Cut);
                break;
            }
            DriverStep::Detached => {
                detached = true;
                end = Some(End::Cut);
                break;
            }
        };
        tokio::select! {
            biased;
            result = stream.writable(), if blocked => {
                if result.is_err() {
                    end = Some(End::Cut);
                }
            }
            result = stream.readable() => {
                if result.is_err() {
                    end = Some(End::Cut);
                } else {
                    match read_append(&stream, &mut rbuf) {
                        // EOF without a close frame: "transport close".
                        Ok(0) => {
                            clean = true;
                            end = Some(End::Cut);
                        }
                        Ok(_) => {
                            end = input(
                                &mut reader, &mut rbuf, shared, &stream, &mut closing, &mut detached,
                            );
                            if rbuf.is_empty() {
                                rbuf = BytesMut::new();
                            }
                        }
                        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => end = Some(End::Cut),
                    }
                }
            }
            () = shared.ws_notify.notified() => {}
            () = inner.abort.notified() => end = Some(End::Cut),
        }
    }

    // Whatever happened, this socket is no longer written directly.
    if let Some(mut pending) = shared.with_direct(|_, slot| detach(slot, &stream)) {
        pending.append(&mut closing);
        closing = pending;
    }
    let end = end.unwrap_or(End::Cut);
    if end != End::Cut {
        // Flush the close frame, end our half, then linger (see `Linger`).
        let _ = tokio::time::timeout(inner.config.ws_close_timeout, async {
            loop {
                match closing.try_write(&stream) {
                    Ok(true) => break,
                    Ok(false) => {
                        if stream.writable().await.is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
            if socket2::SockRef::from(&*stream)
                .shutdown(std::net::Shutdown::Write)
                .is_err()
            {
                return;
            }
            let mut linger = Linger::new(end, &reader);
            let mut chunk = vec![0u8; READ_CHUNK];
            loop {
                if stream.readable().await.is_err() {
                    break;
                }
                match stream.try_read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        if linger.feed(&mut reader, &mut rbuf, chunk.get(..n).unwrap_or_default()) {
                            break;
                        }
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => break,
                }
            }
        })
        .await;
        clean = true;
    } else if let Ok(mut stream) = Arc::try_unwrap(stream) {
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
    }
    if !detached {
        shared.update(|s| s.handle_transport_closed(Transport::WebSocket, !clean));
    }
}

/// Reads what is available through a stack buffer (in its own frame, so that the driver's
/// future does not carry the buffer: an idle connection holds no read buffer) and appends it
/// to `rbuf`.
#[inline(never)]
fn read_append(stream: &TcpStream, rbuf: &mut BytesMut) -> std::io::Result<usize> {
    let mut chunk = [0u8; READ_CHUNK];
    let n = stream.try_read(&mut chunk)?;
    rbuf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// Handles a read's worth of frames in one batch. Control answers (pongs) join the frames to
/// write; when the input ends the transport, the socket is detached and everything left to
/// write goes to `closing`.
fn input(
    reader: &mut FrameReader,
    rbuf: &mut BytesMut,
    shared: &Arc<Shared>,
    stream: &Arc<TcpStream>,
    closing: &mut FrameWriter,
    detached: &mut bool,
) -> Option<End> {
    let mut control = FrameWriter::default();
    // The batch ends after the control answers joined the write side, so that they go out
    // before what the input made the application send (a pong before the echo).
    let _batch = Batch::enter();
    let end = handle_input(reader, rbuf, &mut control, shared, detached);
    if end.is_some() {
        *closing = control;
        return end;
    }
    if !control.is_empty() {
        let attached = shared.with_direct(|_, slot| match slot.as_mut() {
            Some(out) if out.is_for(stream) => {
                out.writer.append(&mut control);
                // The driver writes them (and what follows) on its next step.
                out.driver_owns = true;
                true
            }
            _ => false,
        });
        if !attached {
            *detached = true;
            return Some(End::Cut);
        }
    }
    None
}
