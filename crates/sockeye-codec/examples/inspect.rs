//! Prints the Engine.IO and Socket.IO packets in a capture, using only `sockeye-codec`.
//!
//! ```sh
//! # a long-polling body (packets separated by 0x1e), from a file or stdin
//! cargo run -p sockeye-codec --example inspect -- body.txt
//! printf '40\x1e42["chat",{"text":"hi"}]' | cargo run -p sockeye-codec --example inspect
//! # WebSocket frames, one per line (binary frames as `b` + base64, as in a polling body)
//! cargo run -p sockeye-codec --example inspect -- --ws frames.txt
//! ```
//!
//! Binary packets are reassembled with their attachments across packets, as a server would.
#![allow(clippy::print_stderr)]

use std::io::{self, Read, Write};
use std::process::ExitCode;

use sockeye_codec::Utf8Bytes;
use sockeye_codec::engineio::{self, Payload};
use sockeye_codec::socketio::{self, Assembled, Assembler};

fn main() -> ExitCode {
    let mut websocket = false;
    let mut path = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--ws" => websocket = true,
            "-h" | "--help" => {
                eprintln!("usage: inspect [--ws] [FILE]   (reads stdin without FILE)");
                return ExitCode::SUCCESS;
            }
            _ => path = Some(arg),
        }
    }
    let input = match read(path.as_deref()) {
        Ok(input) => input,
        Err(error) => {
            eprintln!("inspect: {error}");
            return ExitCode::FAILURE;
        }
    };
    let Ok(input) = Utf8Bytes::try_from(input) else {
        eprintln!("inspect: the capture is not UTF-8 (Engine.IO v4 text is)");
        return ExitCode::FAILURE;
    };
    let mut out = io::stdout().lock();
    match inspect(&input, websocket, &mut out) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("inspect: {error}");
            ExitCode::FAILURE
        }
    }
}

fn read(path: Option<&str>) -> io::Result<Vec<u8>> {
    let mut input = Vec::new();
    match path {
        Some(path) => input = std::fs::read(path)?,
        None => {
            io::stdin().read_to_end(&mut input)?;
        }
    }
    Ok(input)
}

/// Decodes and prints every packet; returns whether everything decoded.
fn inspect(input: &Utf8Bytes, websocket: bool, out: &mut impl Write) -> io::Result<bool> {
    let packets: Vec<Result<engineio::Packet, engineio::DecodeError>> = if websocket {
        input
            .lines()
            .filter(|line| !line.is_empty())
            .map(|line| {
                let frame = input.slice_ref(line).unwrap_or_default();
                engineio::Packet::decode_text(frame)
            })
            .collect()
    } else {
        let limits = engineio::Limits::default().max_payload(usize::MAX);
        let body = input.slice_ref(input.trim_end_matches(['\n', '\r']));
        engineio::split_payload(body.unwrap_or_default(), &limits).collect()
    };

    let mut assembler = Assembler::new(socketio::Limits::default());
    let mut ok = true;
    for (index, packet) in packets.into_iter().enumerate() {
        let packet = match packet {
            Ok(packet) => packet,
            Err(error) => {
                writeln!(out, "#{index} engine.io error: {error}")?;
                ok = false;
                continue;
            }
        };
        write!(out, "#{index} engine.io {:?}", packet.packet_type())?;
        let assembled = match packet {
            engineio::Packet::Message(Payload::Text(text)) => {
                writeln!(out, " text ({} bytes)", text.len())?;
                assembler.push_text(text)
            }
            engineio::Packet::Message(Payload::Binary(data)) => {
                writeln!(out, " binary ({} bytes)", data.len())?;
                assembler.push_binary(data)
            }
            engineio::Packet::Open(handshake) => {
                writeln!(
                    out,
                    " sid={} upgrades={:?} pingInterval={} pingTimeout={} maxPayload={}",
                    handshake.sid,
                    handshake.upgrades,
                    handshake.ping_interval,
                    handshake.ping_timeout,
                    handshake.max_payload
                )?;
                continue;
            }
            engineio::Packet::Ping(Some(data)) | engineio::Packet::Pong(Some(data)) => {
                writeln!(out, " {data:?}")?;
                continue;
            }
            _ => {
                writeln!(out)?;
                continue;
            }
        };
        match assembled {
            Ok(Assembled::Pending) => writeln!(out, "   socket.io: waiting for attachments")?,
            Ok(Assembled::Packet {
                packet,
                attachments,
            }) => print_socketio(&packet, &attachments, out)?,
            Ok(other) => writeln!(out, "   socket.io: {other:?}")?,
            Err(error) => {
                writeln!(out, "   socket.io error: {error}")?;
                ok = false;
            }
        }
    }
    if assembler.is_pending() {
        writeln!(
            out,
            "(capture ends while a binary packet waits for attachments)"
        )?;
        ok = false;
    }
    Ok(ok)
}

fn print_socketio(
    packet: &socketio::Packet,
    attachments: &[bytes::Bytes],
    out: &mut impl Write,
) -> io::Result<()> {
    write!(
        out,
        "   socket.io {:?} nsp={}",
        packet.kind, packet.namespace
    )?;
    if let Some(ack_id) = packet.ack_id {
        write!(out, " ack={ack_id}")?;
    }
    if let Ok(name) = packet.event_name()
        && matches!(
            packet.kind,
            socketio::PacketKind::Event | socketio::PacketKind::BinaryEvent
        )
    {
        write!(out, " event={name:?}")?;
    }
    if let Some(data) = &packet.data {
        write!(out, " data={data}")?;
    }
    writeln!(out)?;
    for (num, data) in attachments.iter().enumerate() {
        writeln!(out, "     attachment {num}: {} bytes", data.len())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &'static str, websocket: bool) -> (bool, String) {
        let mut out = Vec::new();
        let ok = inspect(&Utf8Bytes::from_static(input), websocket, &mut out).unwrap();
        (ok, String::from_utf8(out).unwrap())
    }

    #[test]
    fn polling_body() {
        let (ok, out) = run("40\x1e42[\"chat\",{\"text\":\"hi\"}]\n", false);
        assert!(ok, "{out}");
        assert!(out.contains("socket.io Connect nsp=/"), "{out}");
        assert!(out.contains("event=\"chat\""), "{out}");
    }

    #[test]
    fn websocket_frames_with_an_attachment() {
        let (ok, out) = run(
            "2probe\n451-[\"up\",{\"_placeholder\":true,\"num\":0}]\nbAQID\n",
            true,
        );
        assert!(ok, "{out}");
        assert!(out.contains("attachment 0: 3 bytes"), "{out}");
    }

    #[test]
    fn errors_are_reported() {
        let (ok, out) = run("4x\x1e9", false);
        assert!(!ok);
        assert!(out.contains("unknown packet type"), "{out}");
    }
}
