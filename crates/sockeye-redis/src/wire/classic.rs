//! The messages of the classic mode (WIRE.md §1.3-1.6): broadcasts on the broadcast channels,
//! requests on the request channel, answers on the response channels.
//!
//! Requests are JSON text except a broadcast with ack (msgpack); answers are JSON except
//! BROADCAST_ACK (msgpack). Decoders tell them apart by the first byte: `{` is JSON.
//! Encoders write the keys in the order Node writes them, so a message re-encodes byte for byte.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use sockeye_broker::{
    AckResponse, BroadcastFlags, BroadcastOptions, BroadcastPacket, Room, Selector, ServerEvent,
    SocketInfo,
};
use sockeye_codec::Utf8Bytes;

use super::WireError;
use super::notepack::{self, Tree};

/// Request and answer types (`RequestType` of the adapter).
mod kind {
    pub(super) const SOCKETS: u64 = 0;
    pub(super) const ALL_ROOMS: u64 = 1;
    pub(super) const REMOTE_JOIN: u64 = 2;
    pub(super) const REMOTE_LEAVE: u64 = 3;
    pub(super) const REMOTE_DISCONNECT: u64 = 4;
    pub(super) const REMOTE_FETCH: u64 = 5;
    pub(super) const SERVER_SIDE_EMIT: u64 = 6;
    pub(super) const BROADCAST: u64 = 7;
    pub(super) const BROADCAST_CLIENT_COUNT: u64 = 8;
    pub(super) const BROADCAST_ACK: u64 = 9;
}

/// A broadcast without ack: `[uid, {type: 2, data, nsp}, {rooms, except, flags}]` (msgpack).
///
/// ```
/// use sockeye_redis::wire::classic::Broadcast;
///
/// let bytes = b"\x93\xa6TwWcx3\x83\xa4type\x02\xa4data\x92\xa5hello\x01\xa3nsp\xa1/\
///               \x83\xa5rooms\x90\xa6except\x90\xa5flags\x80";
/// let broadcast = Broadcast::decode(bytes).unwrap();
/// assert_eq!(broadcast.uid, "TwWcx3");
/// assert_eq!(broadcast.packet.data().as_str(), r#"["hello",1]"#);
/// assert_eq!(broadcast.encode().unwrap(), bytes);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Broadcast {
    /// The sender's node id (`emitter` for Node's Redis emitter).
    pub uid: String,
    /// The namespace (`/` when the message has none).
    pub nsp: String,
    /// The event, binary values as placeholders and attachments.
    pub packet: BroadcastPacket,
    /// Target and excluded rooms, flags.
    pub opts: BroadcastOptions,
}

impl Broadcast {
    /// A broadcast from node `uid` in namespace `nsp`.
    pub fn new(uid: String, nsp: String, packet: BroadcastPacket, opts: BroadcastOptions) -> Self {
        Self {
            uid,
            nsp,
            packet,
            opts,
        }
    }

    /// The msgpack message; attachments go inline as `bin`, the packet type is 2.
    ///
    /// # Errors
    /// [`WireError::Shape`] when a placeholder has no attachment, [`WireError::TooLarge`].
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let tree = Tree::Array(vec![
            Tree::Str(self.uid.clone()),
            packet_tree(&self.packet, &self.nsp)?,
            opts_tree(&self.opts, true),
        ]);
        encode_msgpack(&tree, self.packet.attachments())
    }

    /// Reads a broadcast (type 2, or 5 from older publishers, with binary inline).
    ///
    /// # Errors
    /// [`WireError`] when the bytes are not such a message.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let tree = notepack::decode_tree(bytes)?;
        let Tree::Array(items) = tree else {
            return Err(WireError::Shape("broadcast is not an array"));
        };
        let mut items = items.into_iter();
        let Some(Tree::Str(uid)) = items.next() else {
            return Err(WireError::Shape("broadcast uid is not a string"));
        };
        let packet = items
            .next()
            .ok_or(WireError::Shape("broadcast without packet"))?;
        let opts = items.next();
        let (packet, nsp) = packet_from(packet)?;
        let opts = opts_from(opts.as_ref(), true)?;
        Ok(Self {
            uid,
            nsp,
            packet,
            opts,
        })
    }
}

/// A message on the request channel.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// 0: the ids of the sockets in `rooms` (legacy; 8.3 never sends it).
    Sockets {
        /// The requester.
        uid: String,
        /// The request id.
        request_id: String,
        /// The rooms (all sockets when empty).
        rooms: Vec<Room>,
    },
    /// 1: every room of every node.
    AllRooms {
        /// The requester.
        uid: String,
        /// The request id.
        request_id: String,
    },
    /// 2: the selected sockets join `rooms`.
    RemoteJoin {
        /// The requester.
        uid: String,
        /// Which sockets.
        selector: Selector,
        /// The rooms to join.
        rooms: Vec<Room>,
    },
    /// 3: the selected sockets leave `rooms`.
    RemoteLeave {
        /// The requester.
        uid: String,
        /// Which sockets.
        selector: Selector,
        /// The rooms to leave.
        rooms: Vec<Room>,
    },
    /// 4: the selected sockets are disconnected.
    RemoteDisconnect {
        /// The requester.
        uid: String,
        /// Which sockets.
        selector: Selector,
        /// Whether their Engine.IO sessions are closed too.
        close: bool,
    },
    /// 5: descriptors of the selected sockets.
    RemoteFetch {
        /// The requester.
        uid: String,
        /// The request id.
        request_id: String,
        /// Which sockets.
        selector: Selector,
    },
    /// 6: an event for the server-side listeners; answered once per node when `request_id` is
    /// set.
    ServerSideEmit {
        /// The requester.
        uid: String,
        /// Set when the requester waits for answers.
        request_id: Option<String>,
        /// The event.
        event: ServerEvent,
    },
    /// 7: a broadcast with ack (msgpack); `opts.flags.timeout` is the requester's timeout.
    BroadcastWithAck {
        /// The requester.
        uid: String,
        /// The request id.
        request_id: String,
        /// The namespace of the packet.
        nsp: String,
        /// The event.
        packet: BroadcastPacket,
        /// Target and excluded rooms, flags.
        opts: BroadcastOptions,
    },
    /// 2 in the 6.x form: socket `sid` joins `room`; its node answers `{requestId}`.
    LegacyJoin {
        /// The requester.
        uid: String,
        /// The request id.
        request_id: String,
        /// The socket.
        sid: String,
        /// The room.
        room: Room,
    },
    /// 3 in the 6.x form: socket `sid` leaves `room`; its node answers `{requestId}`.
    LegacyLeave {
        /// The requester.
        uid: String,
        /// The request id.
        request_id: String,
        /// The socket.
        sid: String,
        /// The room.
        room: Room,
    },
    /// 4 in the 6.x form: socket `sid` is disconnected; its node answers `{requestId}`.
    LegacyDisconnect {
        /// The requester.
        uid: String,
        /// The request id.
        request_id: String,
        /// The socket.
        sid: String,
        /// Whether its Engine.IO session is closed too.
        close: bool,
    },
}

impl Request {
    /// The requester's node id.
    pub fn uid(&self) -> &str {
        match self {
            Self::Sockets { uid, .. }
            | Self::AllRooms { uid, .. }
            | Self::RemoteJoin { uid, .. }
            | Self::RemoteLeave { uid, .. }
            | Self::RemoteDisconnect { uid, .. }
            | Self::RemoteFetch { uid, .. }
            | Self::ServerSideEmit { uid, .. }
            | Self::BroadcastWithAck { uid, .. }
            | Self::LegacyJoin { uid, .. }
            | Self::LegacyLeave { uid, .. }
            | Self::LegacyDisconnect { uid, .. } => uid,
        }
    }

    /// The request id, for the requests that are answered.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Sockets { request_id, .. }
            | Self::AllRooms { request_id, .. }
            | Self::RemoteFetch { request_id, .. }
            | Self::BroadcastWithAck { request_id, .. }
            | Self::LegacyJoin { request_id, .. }
            | Self::LegacyLeave { request_id, .. }
            | Self::LegacyDisconnect { request_id, .. } => Some(request_id),
            Self::ServerSideEmit { request_id, .. } => request_id.as_deref(),
            Self::RemoteJoin { .. } | Self::RemoteLeave { .. } | Self::RemoteDisconnect { .. } => {
                None
            }
        }
    }

    /// The message as Node writes it: JSON text, msgpack for [`Request::BroadcastWithAck`].
    ///
    /// # Errors
    /// [`WireError::Shape`] when a placeholder has no attachment, [`WireError::TooLarge`].
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let uid = |uid: &str| ("uid".to_owned(), Tree::Str(uid.to_owned()));
        let rid = |id: &str| ("requestId".to_owned(), Tree::Str(id.to_owned()));
        let ty = |t: u64| ("type".to_owned(), Tree::UInt(t));
        let entries = match self {
            Self::Sockets {
                uid: u,
                request_id,
                rooms,
            } => vec![
                uid(u),
                rid(request_id),
                ty(kind::SOCKETS),
                ("rooms".into(), rooms_tree(rooms)),
            ],
            Self::AllRooms { uid: u, request_id } => {
                vec![uid(u), rid(request_id), ty(kind::ALL_ROOMS)]
            }
            Self::RemoteJoin {
                uid: u,
                selector,
                rooms,
            }
            | Self::RemoteLeave {
                uid: u,
                selector,
                rooms,
            } => {
                let t = if matches!(self, Self::RemoteJoin { .. }) {
                    kind::REMOTE_JOIN
                } else {
                    kind::REMOTE_LEAVE
                };
                vec![
                    uid(u),
                    ty(t),
                    ("opts".into(), selector_tree(selector, None)),
                    ("rooms".into(), rooms_tree(rooms)),
                ]
            }
            Self::RemoteDisconnect {
                uid: u,
                selector,
                close,
            } => vec![
                uid(u),
                ty(kind::REMOTE_DISCONNECT),
                ("opts".into(), selector_tree(selector, None)),
                ("close".into(), Tree::Bool(*close)),
            ],
            Self::RemoteFetch {
                uid: u,
                request_id,
                selector,
            } => vec![
                uid(u),
                rid(request_id),
                ty(kind::REMOTE_FETCH),
                ("opts".into(), selector_tree(selector, None)),
            ],
            Self::ServerSideEmit {
                uid: u,
                request_id,
                event,
            } => {
                let mut entries = vec![uid(u)];
                if let Some(id) = request_id {
                    entries.push(rid(id));
                }
                entries.push(ty(kind::SERVER_SIDE_EMIT));
                entries.push(("data".into(), tree_from_value(&event.to_packet())));
                entries
            }
            Self::BroadcastWithAck {
                uid: u,
                request_id,
                nsp,
                packet,
                opts,
            } => {
                let tree = Tree::Map(vec![
                    uid(u),
                    rid(request_id),
                    ty(kind::BROADCAST),
                    ("packet".into(), packet_tree(packet, nsp)?),
                    ("opts".into(), opts_tree(opts, true)),
                ]);
                return encode_msgpack(&tree, packet.attachments());
            }
            Self::LegacyJoin {
                uid: u,
                request_id,
                sid,
                room,
            }
            | Self::LegacyLeave {
                uid: u,
                request_id,
                sid,
                room,
            } => {
                let t = if matches!(self, Self::LegacyJoin { .. }) {
                    kind::REMOTE_JOIN
                } else {
                    kind::REMOTE_LEAVE
                };
                vec![
                    uid(u),
                    rid(request_id),
                    ty(t),
                    ("sid".into(), Tree::Str(sid.clone())),
                    ("room".into(), Tree::Str(room.as_str().to_owned())),
                ]
            }
            Self::LegacyDisconnect {
                uid: u,
                request_id,
                sid,
                close,
            } => vec![
                uid(u),
                rid(request_id),
                ty(kind::REMOTE_DISCONNECT),
                ("sid".into(), Tree::Str(sid.clone())),
                ("close".into(), Tree::Bool(*close)),
            ],
        };
        Ok(json_text(Tree::Map(entries)).into_bytes())
    }

    /// Reads a request: JSON when the first byte is `{`, msgpack otherwise.
    ///
    /// # Errors
    /// [`WireError`] for unparseable bytes, an unknown type or a wrong shape (Node ignores
    /// all of these).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut tree = parse_either(bytes)?;
        let ty = message_type(&tree).ok_or(WireError::Shape("request without a type"))?;
        let uid = tree
            .get("uid")
            .and_then(Tree::as_str)
            .unwrap_or("")
            .to_owned();
        let request_id = tree
            .get("requestId")
            .and_then(Tree::as_str)
            .map(str::to_owned);
        let need_id = |id: Option<String>| id.ok_or(WireError::Shape("request without requestId"));
        let legacy = tree.get("opts").is_none();
        Ok(match ty {
            kind::SOCKETS => Self::Sockets {
                uid,
                request_id: need_id(request_id)?,
                rooms: rooms_from(tree.get("rooms"))?,
            },
            kind::ALL_ROOMS => Self::AllRooms {
                uid,
                request_id: need_id(request_id)?,
            },
            kind::REMOTE_JOIN | kind::REMOTE_LEAVE if legacy => {
                let request_id = need_id(request_id)?;
                let sid = string_field(&tree, "sid")?;
                let room = Room::from(string_field(&tree, "room")?);
                if ty == kind::REMOTE_JOIN {
                    Self::LegacyJoin {
                        uid,
                        request_id,
                        sid,
                        room,
                    }
                } else {
                    Self::LegacyLeave {
                        uid,
                        request_id,
                        sid,
                        room,
                    }
                }
            }
            kind::REMOTE_JOIN | kind::REMOTE_LEAVE => {
                let selector = opts_from(tree.get("opts"), false)?.selector;
                let rooms = rooms_from(tree.get("rooms"))?;
                if ty == kind::REMOTE_JOIN {
                    Self::RemoteJoin {
                        uid,
                        selector,
                        rooms,
                    }
                } else {
                    Self::RemoteLeave {
                        uid,
                        selector,
                        rooms,
                    }
                }
            }
            kind::REMOTE_DISCONNECT => {
                let close = tree.get("close").is_some_and(Tree::is_truthy);
                if legacy {
                    Self::LegacyDisconnect {
                        uid,
                        request_id: need_id(request_id)?,
                        sid: string_field(&tree, "sid")?,
                        close,
                    }
                } else {
                    Self::RemoteDisconnect {
                        uid,
                        selector: opts_from(tree.get("opts"), false)?.selector,
                        close,
                    }
                }
            }
            kind::REMOTE_FETCH => Self::RemoteFetch {
                uid,
                request_id: need_id(request_id)?,
                selector: opts_from(tree.get("opts"), false)?.selector,
            },
            kind::SERVER_SIDE_EMIT => {
                let data = tree
                    .take("data")
                    .ok_or(WireError::Shape("server-side emit without data"))?;
                let event = ServerEvent::from_packet(data.into_value(&mut Vec::new())).ok_or(
                    WireError::Shape("server-side emit data is not [event, ...]"),
                )?;
                Self::ServerSideEmit {
                    uid,
                    request_id,
                    event,
                }
            }
            kind::BROADCAST => {
                let packet = tree
                    .take("packet")
                    .ok_or(WireError::Shape("broadcast request without packet"))?;
                let (packet, nsp) = packet_from(packet)?;
                Self::BroadcastWithAck {
                    uid,
                    request_id: need_id(request_id)?,
                    nsp,
                    packet,
                    opts: opts_from(tree.get("opts"), true)?,
                }
            }
            _ => return Err(WireError::Shape("unknown request type")),
        })
    }
}

/// What an answer is read as. Answers to FETCH, ALL_ROOMS and SOCKETS carry no type: the
/// requester knows what it asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseKind {
    /// An answer to [`Request::Sockets`].
    Sockets,
    /// An answer to [`Request::AllRooms`].
    AllRooms,
    /// An answer to [`Request::RemoteFetch`].
    Fetch,
    /// An answer to [`Request::ServerSideEmit`] with a request id.
    ServerSideEmit,
    /// An answer to [`Request::BroadcastWithAck`]: the frame's type (8 or 9) decides.
    BroadcastAck,
    /// An answer to a legacy join/leave/disconnect.
    Legacy,
}

/// An answer whose request id is read, its body not yet: look the id up, then call
/// [`into_response`](Self::into_response) with what that request expects.
///
/// ```
/// use sockeye_redis::wire::classic::{Response, ResponseFrame, ResponseKind};
///
/// let frame = ResponseFrame::decode(br#"{"requestId":"Q2g5p5","rooms":["room1"]}"#).unwrap();
/// assert_eq!(frame.request_id, "Q2g5p5");
/// let Response::AllRooms { rooms, .. } = frame.into_response(ResponseKind::AllRooms).unwrap()
/// else { panic!() };
/// assert_eq!(rooms[0].as_str(), "room1");
/// ```
#[derive(Clone, Debug)]
pub struct ResponseFrame {
    /// The request this answers.
    pub request_id: String,
    body: Tree,
}

impl ResponseFrame {
    /// Reads an answer's request id: JSON when the first byte is `{`, msgpack otherwise.
    ///
    /// # Errors
    /// [`WireError`] for unparseable bytes or an answer without a string `requestId`.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut body = parse_either(bytes)?;
        let Some(Tree::Str(request_id)) = body.take("requestId") else {
            return Err(WireError::Shape("answer without requestId"));
        };
        Ok(Self { request_id, body })
    }

    /// The answer's `type`, when it has one.
    pub fn message_type(&self) -> Option<u64> {
        message_type(&self.body)
    }

    /// Reads the body as an answer of `expected`. A FETCH, SOCKETS or ALL_ROOMS answer
    /// without its list reads as an empty list (Node counts it as an answer too); FETCH
    /// descriptors that are not sockets are skipped.
    ///
    /// # Errors
    /// [`WireError::Shape`] when the body does not have the expected shape.
    pub fn into_response(mut self, expected: ResponseKind) -> Result<Response, WireError> {
        let request_id = self.request_id;
        Ok(match expected {
            ResponseKind::Sockets => Response::Sockets {
                request_id,
                sockets: strings_lenient(self.body.get("sockets")),
            },
            ResponseKind::AllRooms => Response::AllRooms {
                request_id,
                rooms: strings_lenient(self.body.get("rooms"))
                    .into_iter()
                    .map(Room::from)
                    .collect(),
            },
            ResponseKind::Fetch => {
                let sockets = match self.body.take("sockets") {
                    Some(Tree::Array(items)) => items
                        .into_iter()
                        .filter_map(|item| {
                            serde_json::from_value::<SocketInfo>(item.into_value(&mut Vec::new()))
                                .ok()
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                Response::Fetch {
                    request_id,
                    sockets,
                }
            }
            ResponseKind::ServerSideEmit => Response::ServerSideEmit {
                request_id,
                data: self
                    .body
                    .take("data")
                    .map_or(Value::Null, |d| d.into_value(&mut Vec::new())),
            },
            ResponseKind::BroadcastAck => match message_type(&self.body) {
                Some(kind::BROADCAST_CLIENT_COUNT) => {
                    let count = self
                        .body
                        .get("clientCount")
                        .and_then(Tree::as_f64)
                        .filter(|c| *c >= 0.0 && c.fract() == 0.0)
                        .ok_or(WireError::Shape("client count is not a count"))?;
                    Response::ClientCount {
                        request_id,
                        client_count: count as usize,
                    }
                }
                Some(kind::BROADCAST_ACK) => {
                    let mut attachments = Vec::new();
                    let mut text = String::from("[");
                    if let Some(packet) = self.body.take("packet") {
                        packet.write_json(&mut attachments, &mut text);
                    }
                    text.push(']');
                    Response::BroadcastAck {
                        request_id,
                        answer: AckResponse {
                            data: Utf8Bytes::from(text),
                            attachments,
                        },
                    }
                }
                _ => return Err(WireError::Shape("broadcast answer of unknown type")),
            },
            ResponseKind::Legacy => Response::Legacy { request_id },
        })
    }
}

/// An answer on a response channel.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Response {
    /// To [`Request::Sockets`]: socket ids.
    Sockets {
        /// The request answered.
        request_id: String,
        /// Socket ids.
        sockets: Vec<String>,
    },
    /// To [`Request::AllRooms`]: every room of the node, socket rooms included.
    AllRooms {
        /// The request answered.
        request_id: String,
        /// The rooms.
        rooms: Vec<Room>,
    },
    /// To [`Request::RemoteFetch`]: the node's selected sockets.
    Fetch {
        /// The request answered.
        request_id: String,
        /// Their descriptors, in Node's shape.
        sockets: Vec<SocketInfo>,
    },
    /// To [`Request::ServerSideEmit`]: the listener's first ack argument (`null` when none).
    ServerSideEmit {
        /// The request answered.
        request_id: String,
        /// The value.
        data: Value,
    },
    /// Type 8, to [`Request::BroadcastWithAck`]: how many clients the node sent it to.
    ClientCount {
        /// The request answered.
        request_id: String,
        /// The count (0 included).
        client_count: usize,
    },
    /// Type 9, to [`Request::BroadcastWithAck`]: one client's answer (only its first argument
    /// crosses nodes).
    BroadcastAck {
        /// The request answered.
        request_id: String,
        /// The client's answer.
        answer: AckResponse,
    },
    /// To a legacy join/leave/disconnect: done.
    Legacy {
        /// The request answered.
        request_id: String,
    },
}

impl Response {
    /// The request this answers.
    pub fn request_id(&self) -> &str {
        match self {
            Self::Sockets { request_id, .. }
            | Self::AllRooms { request_id, .. }
            | Self::Fetch { request_id, .. }
            | Self::ServerSideEmit { request_id, .. }
            | Self::ClientCount { request_id, .. }
            | Self::BroadcastAck { request_id, .. }
            | Self::Legacy { request_id } => request_id,
        }
    }

    /// The message as Node writes it: JSON text, msgpack for [`Response::BroadcastAck`].
    ///
    /// # Errors
    /// [`WireError`] when the answer's JSON does not parse or a placeholder has no attachment.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let rid = |id: &str| ("requestId".to_owned(), Tree::Str(id.to_owned()));
        let ty = |t: u64| ("type".to_owned(), Tree::UInt(t));
        let tree = match self {
            Self::Sockets {
                request_id,
                sockets,
            } => Tree::Map(vec![
                rid(request_id),
                (
                    "sockets".into(),
                    Tree::Array(sockets.iter().map(|s| Tree::Str(s.clone())).collect()),
                ),
            ]),
            Self::AllRooms { request_id, rooms } => {
                Tree::Map(vec![rid(request_id), ("rooms".into(), rooms_tree(rooms))])
            }
            Self::Fetch {
                request_id,
                sockets,
            } => {
                let mut text = String::from(r#"{"requestId":"#);
                text.push_str(&serde_json::to_string(request_id)?);
                text.push_str(r#","sockets":"#);
                text.push_str(&serde_json::to_string(sockets)?);
                text.push('}');
                return Ok(text.into_bytes());
            }
            Self::ServerSideEmit { request_id, data } => Tree::Map(vec![
                ty(kind::SERVER_SIDE_EMIT),
                rid(request_id),
                ("data".into(), tree_from_value(data)),
            ]),
            Self::ClientCount {
                request_id,
                client_count,
            } => Tree::Map(vec![
                ty(kind::BROADCAST_CLIENT_COUNT),
                rid(request_id),
                ("clientCount".into(), Tree::UInt(*client_count as u64)),
            ]),
            Self::BroadcastAck { request_id, answer } => {
                let mut entries = vec![ty(kind::BROADCAST_ACK), rid(request_id)];
                let args = notepack::tree_from_json(answer.data.as_str())?;
                if let Tree::Array(args) = args
                    && let Some(first) = args.into_iter().next()
                {
                    entries.push(("packet".into(), first));
                }
                return encode_msgpack(&Tree::Map(entries), &answer.attachments);
            }
            Self::Legacy { request_id } => Tree::Map(vec![rid(request_id)]),
        };
        Ok(json_text(tree).into_bytes())
    }
}

fn encode_msgpack(tree: &Tree, attachments: &[Bytes]) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::new();
    notepack::encode_tree(tree, attachments, &mut out, 0)?;
    Ok(out)
}

fn json_text(tree: Tree) -> String {
    let mut text = String::new();
    tree.write_json(&mut Vec::new(), &mut text);
    text
}

fn parse_either(bytes: &[u8]) -> Result<Tree, WireError> {
    if bytes.first() == Some(&b'{') {
        let text = std::str::from_utf8(bytes).map_err(|_| WireError::Shape("JSON not UTF-8"))?;
        notepack::tree_from_json(text)
    } else {
        notepack::decode_tree(bytes)
    }
}

fn message_type(tree: &Tree) -> Option<u64> {
    tree.get("type")
        .and_then(Tree::as_f64)
        .filter(|t| *t >= 0.0 && t.fract() == 0.0)
        .map(|t| t as u64)
}

fn string_field(tree: &Tree, key: &'static str) -> Result<String, WireError> {
    tree.get(key)
        .and_then(Tree::as_str)
        .map(str::to_owned)
        .ok_or(WireError::Shape(key))
}

fn strings_lenient(tree: Option<&Tree>) -> Vec<String> {
    match tree {
        Some(Tree::Array(items)) => items
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// `{type: 2, data, nsp}`.
fn packet_tree(packet: &BroadcastPacket, nsp: &str) -> Result<Tree, WireError> {
    Ok(Tree::Map(vec![
        ("type".into(), Tree::UInt(2)),
        (
            "data".into(),
            notepack::tree_from_json(packet.data().as_str())?,
        ),
        ("nsp".into(), Tree::Str(nsp.to_owned())),
    ]))
}

fn packet_from(mut packet: Tree) -> Result<(BroadcastPacket, String), WireError> {
    match message_type(&packet) {
        Some(2 | 5) => {}
        _ => return Err(WireError::Shape("packet is not an EVENT")),
    }
    let nsp = match packet.get("nsp") {
        None => "/".to_owned(),
        Some(Tree::Str(nsp)) => nsp.clone(),
        Some(_) => return Err(WireError::Shape("packet nsp is not a string")),
    };
    let data = packet
        .take("data")
        .ok_or(WireError::Shape("packet without data"))?;
    let mut attachments = Vec::new();
    let mut text = String::new();
    data.write_json(&mut attachments, &mut text);
    let packet = BroadcastPacket::new(Utf8Bytes::from(text), attachments)
        .map_err(|_| WireError::Shape("packet data is not [event, ...]"))?;
    Ok((packet, nsp))
}

fn rooms_tree(rooms: &[Room]) -> Tree {
    Tree::Array(
        rooms
            .iter()
            .map(|r| Tree::Str(r.as_str().to_owned()))
            .collect(),
    )
}

fn rooms_from(tree: Option<&Tree>) -> Result<Vec<Room>, WireError> {
    match tree {
        None | Some(Tree::Null) => Ok(Vec::new()),
        Some(Tree::Array(items)) => items
            .iter()
            .map(|t| match t {
                Tree::Str(s) => Ok(Room::from(s.as_str())),
                Tree::Int(i) => Ok(Room::from(i.to_string())),
                Tree::UInt(u) => Ok(Room::from(u.to_string())),
                _ => Err(WireError::Shape("room is not a string")),
            })
            .collect(),
        Some(_) => Err(WireError::Shape("rooms is not an array")),
    }
}

/// `{rooms, except}` and, with `flags`, `flags`.
fn selector_tree(selector: &Selector, flags: Option<&BroadcastFlags>) -> Tree {
    let mut entries = vec![
        ("rooms".to_owned(), rooms_tree(&selector.rooms)),
        ("except".to_owned(), rooms_tree(&selector.except)),
    ];
    if let Some(flags) = flags {
        let mut f = Vec::new();
        if flags.local {
            f.push(("local".to_owned(), Tree::Bool(true)));
        }
        if flags.volatile {
            f.push(("volatile".to_owned(), Tree::Bool(true)));
        }
        if !flags.compress {
            f.push(("compress".to_owned(), Tree::Bool(false)));
        }
        if let Some(timeout) = flags.timeout {
            let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
            f.push(("timeout".to_owned(), Tree::UInt(ms)));
        }
        entries.push(("flags".to_owned(), Tree::Map(f)));
    }
    Tree::Map(entries)
}

fn opts_tree(opts: &BroadcastOptions, with_flags: bool) -> Tree {
    selector_tree(&opts.selector, with_flags.then_some(&opts.flags))
}

/// Reads `{rooms, except, flags}`; a missing `opts` selects every socket.
fn opts_from(tree: Option<&Tree>, with_flags: bool) -> Result<BroadcastOptions, WireError> {
    let Some(tree) = tree else {
        return Ok(BroadcastOptions::default());
    };
    if !matches!(tree, Tree::Map(_)) {
        return Err(WireError::Shape("opts is not a map"));
    }
    let mut opts = BroadcastOptions::new(
        rooms_from(tree.get("rooms"))?,
        rooms_from(tree.get("except"))?,
    );
    if with_flags && let Some(flags) = tree.get("flags") {
        opts.flags = flags_from(flags);
    }
    Ok(opts)
}

fn flags_from(tree: &Tree) -> BroadcastFlags {
    let mut flags = BroadcastFlags::default();
    flags.local = tree.get("local").is_some_and(Tree::is_truthy);
    flags.volatile = tree.get("volatile").is_some_and(Tree::is_truthy);
    flags.compress = !matches!(tree.get("compress"), Some(Tree::Bool(false)));
    flags.timeout = tree
        .get("timeout")
        .and_then(Tree::as_f64)
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map(|ms| Duration::from_millis(ms as u64));
    flags
}

/// A JSON value as a tree (keys in serde_json's order).
fn tree_from_value(value: &Value) -> Tree {
    match value {
        Value::Null => Tree::Null,
        Value::Bool(b) => Tree::Bool(*b),
        Value::Number(n) => n
            .as_u64()
            .map(Tree::UInt)
            .or_else(|| n.as_i64().map(Tree::Int))
            .unwrap_or_else(|| Tree::Float(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => Tree::Str(s.clone()),
        Value::Array(items) => Tree::Array(items.iter().map(tree_from_value).collect()),
        Value::Object(map) => Tree::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), tree_from_value(v)))
                .collect(),
        ),
    }
}
