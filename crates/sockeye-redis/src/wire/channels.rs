//! Channel names of the classic mode (WIRE.md §1.2).

/// The channels of one namespace on one node, classic mode.
///
/// ```
/// use sockeye_redis::wire::channels::ClassicChannels;
///
/// let ch = ClassicChannels::new("socket.io", "/", "TwWcx3");
/// assert_eq!(ch.broadcast_pattern(), "socket.io#/#*");
/// assert_eq!(ch.broadcast_channel(&["room1"]), "socket.io#/#room1#");
/// assert_eq!(ch.broadcast_channel::<&str>(&[]), "socket.io#/#");
/// assert_eq!(ch.request(), "socket.io-request#/#");
/// assert_eq!(ch.response(), "socket.io-response#/#");
/// assert_eq!(ch.own_response(), "socket.io-response#/#TwWcx3#");
/// assert_eq!(ch.room_of("socket.io#/#room1#"), Some("room1"));
/// assert_eq!(ch.room_of("socket.io#/#"), Some(""));
/// assert_eq!(ch.room_of("socket.io#/second#"), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassicChannels {
    key: String,
    nsp: String,
    uid: String,
    /// `{key}#{nsp}#`
    prefix: String,
}

impl ClassicChannels {
    /// The channels of namespace `nsp` under prefix `key` (Node's `key` option, default
    /// `socket.io`) for the node `uid`.
    pub fn new(key: &str, nsp: &str, uid: &str) -> Self {
        Self {
            key: key.to_owned(),
            nsp: nsp.to_owned(),
            uid: uid.to_owned(),
            prefix: format!("{key}#{nsp}#"),
        }
    }

    /// The node id these channels were made for.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// The namespace.
    pub fn nsp(&self) -> &str {
        &self.nsp
    }

    /// The PSUBSCRIBE pattern of the namespace's broadcasts, `{key}#{nsp}#*`. Glob characters
    /// (`*?[]\`) of the key and namespace are escaped, so the pattern matches this namespace
    /// only (Node does not escape them; the difference only narrows what this node receives).
    pub fn broadcast_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.prefix.len() + 2);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }

    /// The channel a broadcast to `rooms` is published on: the room's channel
    /// `{key}#{nsp}#{room}#` when there is exactly one room, the namespace channel `{key}#{nsp}#`
    /// otherwise.
    pub fn broadcast_channel<R: std::borrow::Borrow<str>>(&self, rooms: &[R]) -> String {
        match rooms {
            [room] => format!("{}{}#", self.prefix, room.borrow()),
            _ => self.prefix.clone(),
        }
    }

    /// The request channel, `{key}-request#{nsp}#` (also what `PUBSUB NUMSUB` counts).
    pub fn request(&self) -> String {
        format!("{}-request#{}#", self.key, self.nsp)
    }

    /// The shared response channel, `{key}-response#{nsp}#`.
    pub fn response(&self) -> String {
        format!("{}-response#{}#", self.key, self.nsp)
    }

    /// This node's own response channel, `{key}-response#{nsp}#{uid}#`.
    pub fn own_response(&self) -> String {
        self.response_for(&self.uid)
    }

    /// The own response channel of node `uid`.
    pub fn response_for(&self, uid: &str) -> String {
        format!("{}-response#{}#{uid}#", self.key, self.nsp)
    }

    /// The room a broadcast channel names: `Some(room)` for `{key}#{nsp}#{room}#`, `Some("")`
    /// for the namespace channel `{key}#{nsp}#`, `None` for any other channel.
    pub fn room_of<'a>(&self, channel: &'a str) -> Option<&'a str> {
        let rest = channel.strip_prefix(self.prefix.as_str())?;
        if rest.is_empty() {
            return Some("");
        }
        rest.strip_suffix('#')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_are_escaped_and_rooms_may_hold_hashes() {
        let ch = ClassicChannels::new("k*", "/a[1]", "u");
        assert_eq!(ch.broadcast_pattern(), "k\\*#/a\\[1\\]#*");
        let ch = ClassicChannels::new("socket.io", "/", "u");
        assert_eq!(ch.room_of("socket.io#/#a#b#"), Some("a#b"));
        assert_eq!(ch.room_of("socket.io#/#x"), None);
        assert_eq!(ch.broadcast_channel(&["a", "b"]), "socket.io#/#");
        assert_eq!(ch.response_for("X"), "socket.io-response#/#X#");
    }
}
