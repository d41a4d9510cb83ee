//! A validating JSON scanner for Socket.IO payloads: one pass, no value tree, no recursion.
//!
//! It checks that the text is one well-formed JSON value (RFC 8259, as `JSON.parse` and
//! `serde_json` accept it), that arrays and objects nest no deeper than a limit, and while it is
//! at it reports what the packet decoder needs: the top-level shape, the raw text of a top-level
//! array's first element (the event name), and for binary packets whether every attachment
//! placeholder is valid. The nesting is tracked on an explicit stack, so a huge depth limit
//! cannot overflow the call stack.

/// The kind of the top-level value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Top {
    Object,
    Array,
    String,
    /// A number, `true`, `false` or `null`.
    Scalar,
}

/// What a successful scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scan<'a> {
    pub(crate) top: Top,
    /// The raw text of the first element when the top-level value is a non-empty array.
    pub(crate) first: Option<&'a str>,
    /// Whether every placeholder is valid (always `true` when no attachment count was given).
    pub(crate) placeholders_ok: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanError {
    Invalid,
    TooDeep,
}

/// Scans `text`. With `attachments`, objects whose `_placeholder` is `true` must have a `num`
/// that is an integer below it (the reference's `reconstructPacket` rule; nothing inside such an
/// object is looked at).
pub(crate) fn scan(
    text: &str,
    max_depth: usize,
    attachments: Option<u64>,
) -> Result<Scan<'_>, ScanError> {
    Scanner {
        text,
        bytes: text.as_bytes(),
        max_depth,
        attachments,
        first_only: false,
    }
    .run()
}

/// Reads a top-level array only as far as its first element: returns the shape and that
/// element's raw text, without looking at the rest (which [`scan`] checked at decode).
pub(crate) fn scan_first(text: &str) -> Result<Scan<'_>, ScanError> {
    Scanner {
        text,
        bytes: text.as_bytes(),
        max_depth: usize::MAX,
        attachments: None,
        first_only: true,
    }
    .run()
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    max_depth: usize,
    attachments: Option<u64>,
    first_only: bool,
}

/// An object key, as far as placeholders care.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Key {
    #[default]
    Other,
    Placeholder,
    Num,
}

/// A value that has just been read, as far as placeholders care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    True,
    Index(u64),
    Other,
    /// A container that closed, with whether its placeholders were valid.
    Container(bool),
}

/// The placeholder bookkeeping of one open object (kept only for binary packets).
#[derive(Debug, Clone, Copy, Default)]
struct Frame {
    /// The last `num` value, when it was a non-negative integer.
    num: Option<u64>,
    key: Key,
    placeholder: bool,
    invalid: bool,
}

/// Levels whose kind is kept in a bit of `Stack::objects`; deeper ones go to the heap.
const INLINE_LEVELS: usize = 128;

/// The open arrays and objects. Whether a level is an object is one bit (inline for the first
/// 128 levels); placeholder frames exist only when placeholders are checked.
struct Stack {
    len: usize,
    objects: u128,
    deep_objects: Vec<bool>,
    frames: Vec<Frame>,
    track: bool,
}

impl Stack {
    fn new(track: bool) -> Self {
        Self {
            len: 0,
            objects: 0,
            deep_objects: Vec::new(),
            frames: Vec::new(),
            track,
        }
    }

    fn push(&mut self, object: bool) {
        if self.len < INLINE_LEVELS {
            let bit = 1u128 << self.len;
            if object {
                self.objects |= bit;
            } else {
                self.objects &= !bit;
            }
        } else {
            self.deep_objects.push(object);
        }
        if self.track {
            self.frames.push(Frame::default());
        }
        self.len += 1;
    }

    /// Whether the innermost open level is an object; `None` at the top level.
    fn top_is_object(&self) -> Option<bool> {
        let index = self.len.checked_sub(1)?;
        Some(if index < INLINE_LEVELS {
            (self.objects >> index) & 1 == 1
        } else {
            self.deep_objects.last().copied().unwrap_or_default()
        })
    }

    fn top_frame(&mut self) -> Option<&mut Frame> {
        self.frames.last_mut()
    }

    /// Closes the innermost level: returns whether its placeholders were valid.
    fn pop(&mut self, scanner: &Scanner<'_>) -> Option<bool> {
        let index = self.len.checked_sub(1)?;
        if index >= INLINE_LEVELS {
            self.deep_objects.pop();
        }
        self.len = index;
        Some(
            self.frames
                .pop()
                .is_none_or(|frame| scanner.frame_ok(&frame)),
        )
    }
}

impl<'a> Scanner<'a> {
    fn byte(&self, at: usize) -> Option<u8> {
        self.bytes.get(at).copied()
    }

    fn skip_whitespace(&self, mut at: usize) -> usize {
        while matches!(self.byte(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            at += 1;
        }
        at
    }

    fn run(&self) -> Result<Scan<'a>, ScanError> {
        let invalid = ScanError::Invalid;
        let mut at = self.skip_whitespace(0);
        let top = match self.byte(at) {
            Some(b'{') => Top::Object,
            Some(b'[') => Top::Array,
            Some(b'"') => Top::String,
            _ => Top::Scalar,
        };
        let mut stack = Stack::new(self.attachments.is_some());
        let mut first_start = None;
        let mut first = None;

        loop {
            // A value starts at `at` (whitespace skipped).
            if stack.len == 1 && top == Top::Array && first_start.is_none() {
                first_start = Some(at);
            }
            let mut done = match self.byte(at).ok_or(invalid)? {
                open @ (b'{' | b'[') => {
                    if stack.len >= self.max_depth {
                        return Err(ScanError::TooDeep);
                    }
                    let object = open == b'{';
                    stack.push(object);
                    at = self.skip_whitespace(at + 1);
                    let close = if object { b'}' } else { b']' };
                    if self.byte(at) == Some(close) {
                        at += 1;
                        Done::Container(stack.pop(self).ok_or(invalid)?)
                    } else {
                        if object {
                            at = self.object_key(at, &mut stack)?;
                        }
                        continue;
                    }
                }
                b'"' => {
                    at = self.string(at)?.0;
                    Done::Other
                }
                b't' => {
                    at = self.literal(at, b"true")?;
                    Done::True
                }
                b'f' => {
                    at = self.literal(at, b"false")?;
                    Done::Other
                }
                b'n' => {
                    at = self.literal(at, b"null")?;
                    Done::Other
                }
                b'-' | b'0'..=b'9' => {
                    let (end, index) = self.number(at)?;
                    at = end;
                    index.map_or(Done::Other, Done::Index)
                }
                _ => return Err(invalid),
            };

            // A value ended at `at`: hand it to its container, closing containers as they end.
            loop {
                if stack.len == 1
                    && top == Top::Array
                    && first.is_none()
                    && let Some(start) = first_start
                {
                    first = self.text.get(start..at);
                    if self.first_only {
                        return Ok(Scan {
                            top,
                            first,
                            placeholders_ok: true,
                        });
                    }
                }
                let Some(object) = stack.top_is_object() else {
                    // The top-level value is complete: only whitespace may follow.
                    if self.skip_whitespace(at) != self.bytes.len() {
                        return Err(invalid);
                    }
                    let placeholders_ok = match done {
                        Done::Container(ok) => ok,
                        Done::True | Done::Index(_) | Done::Other => true,
                    };
                    return Ok(Scan {
                        top,
                        first,
                        placeholders_ok,
                    });
                };
                if let Some(frame) = stack.top_frame() {
                    if let Done::Container(false) = done {
                        frame.invalid = true;
                    }
                    if object {
                        match frame.key {
                            Key::Placeholder => frame.placeholder = done == Done::True,
                            Key::Num => {
                                frame.num = match done {
                                    Done::Index(index) => Some(index),
                                    _ => None,
                                }
                            }
                            Key::Other => {}
                        }
                    }
                }
                at = self.skip_whitespace(at);
                match (self.byte(at), object) {
                    (Some(b','), _) => {
                        at = self.skip_whitespace(at + 1);
                        if object {
                            at = self.object_key(at, &mut stack)?;
                        }
                        break;
                    }
                    (Some(b']'), false) | (Some(b'}'), true) => {
                        at += 1;
                        done = Done::Container(stack.pop(self).ok_or(invalid)?);
                    }
                    _ => return Err(invalid),
                }
            }
        }
    }

    /// Whether a closed container's placeholders are valid.
    fn frame_ok(&self, frame: &Frame) -> bool {
        match self.attachments {
            Some(count) if frame.placeholder => frame.num.is_some_and(|num| num < count),
            _ => !frame.invalid,
        }
    }

    /// Reads `"key"` and `:` at `at`, records which key it is on the open object, and returns
    /// where its value starts.
    fn object_key(&self, at: usize, stack: &mut Stack) -> Result<usize, ScanError> {
        if self.byte(at) != Some(b'"') {
            return Err(ScanError::Invalid);
        }
        let (end, escaped) = self.string(at)?;
        if let Some(frame) = stack.top_frame() {
            let raw = self.text.get(at..end).unwrap_or_default();
            frame.key = key_of(raw, escaped);
        }
        let colon = self.skip_whitespace(end);
        if self.byte(colon) != Some(b':') {
            return Err(ScanError::Invalid);
        }
        Ok(self.skip_whitespace(colon + 1))
    }

    /// Reads the string starting with the quote at `at`: returns the position after its closing
    /// quote and whether it has escapes.
    fn string(&self, at: usize) -> Result<(usize, bool), ScanError> {
        let mut at = at + 1;
        let mut escaped = false;
        loop {
            at = self.skip_plain(at);
            match self.byte(at) {
                Some(b'"') => return Ok((at + 1, escaped)),
                Some(b'\\') => {
                    escaped = true;
                    at += match self.byte(at + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => 2,
                        Some(b'u') => {
                            let hex = self.bytes.get(at + 2..at + 6).ok_or(ScanError::Invalid)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(ScanError::Invalid);
                            }
                            6
                        }
                        _ => return Err(ScanError::Invalid),
                    };
                }
                // A control character (they must be escaped) or the end of the text.
                _ => return Err(ScanError::Invalid),
            }
        }
    }

    /// Skips what may stand unescaped in a string (anything but `"`, `\` and control
    /// characters), eight bytes at a time: returns the position of the first byte that may not.
    fn skip_plain(&self, mut at: usize) -> usize {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        // The classic "has a zero byte" and "has a byte less than n" tests: the lowest flagged
        // byte of each is exact (false positives only appear above a true one).
        while let Some(chunk) = self.bytes.get(at..at + 8) {
            let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
            let quote = word ^ (ONES * u64::from(b'"'));
            let backslash = word ^ (ONES * u64::from(b'\\'));
            let special = ((quote.wrapping_sub(ONES) & !quote)
                | (backslash.wrapping_sub(ONES) & !backslash)
                | (word.wrapping_sub(ONES * 0x20) & !word))
                & HIGH;
            if special != 0 {
                return at + (special.trailing_zeros() / 8) as usize;
            }
            at += 8;
        }
        while self
            .byte(at)
            .is_some_and(|byte| byte != b'"' && byte != b'\\' && byte >= 0x20)
        {
            at += 1;
        }
        at
    }

    fn literal(&self, at: usize, word: &[u8]) -> Result<usize, ScanError> {
        if self.bytes.get(at..at + word.len()) == Some(word) {
            Ok(at + word.len())
        } else {
            Err(ScanError::Invalid)
        }
    }

    /// Reads a number: returns where it ends and its value when it is a non-negative integer
    /// that fits in a `u64`.
    fn number(&self, start: usize) -> Result<(usize, Option<u64>), ScanError> {
        let mut at = start;
        let negative = self.byte(at) == Some(b'-');
        if negative {
            at += 1;
        }
        match self.byte(at) {
            Some(b'0') => at += 1,
            Some(b'1'..=b'9') => at = self.digits(at),
            _ => return Err(ScanError::Invalid),
        }
        let integer_end = at;
        if self.byte(at) == Some(b'.') {
            at = self.required_digits(at + 1)?;
        }
        if matches!(self.byte(at), Some(b'e' | b'E')) {
            at += 1;
            if matches!(self.byte(at), Some(b'+' | b'-')) {
                at += 1;
            }
            at = self.required_digits(at)?;
        }
        // Only placeholders care about the value.
        let index = if self.attachments.is_some() && !negative && at == integer_end {
            self.bytes
                .get(start..at)
                .and_then(crate::socketio::parse_u64)
        } else {
            None
        };
        Ok((at, index))
    }

    fn digits(&self, mut at: usize) -> usize {
        while self.byte(at).is_some_and(|byte| byte.is_ascii_digit()) {
            at += 1;
        }
        at
    }

    fn required_digits(&self, at: usize) -> Result<usize, ScanError> {
        let end = self.digits(at);
        if end == at {
            Err(ScanError::Invalid)
        } else {
            Ok(end)
        }
    }
}

/// Classifies a raw key (with its quotes); escaped keys are decoded first, as `JSON.parse` would.
fn key_of(raw: &str, escaped: bool) -> Key {
    let classify = |key: &str| match key {
        "_placeholder" => Key::Placeholder,
        "num" => Key::Num,
        _ => Key::Other,
    };
    if escaped {
        serde_json::from_str::<String>(raw).map_or(Key::Other, |key| classify(&key))
    } else {
        classify(raw.get(1..raw.len().saturating_sub(1)).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(text: &str) -> bool {
        scan(text, 64, None).is_ok()
    }

    #[test]
    fn accepts_what_serde_json_accepts() {
        for text in [
            "0",
            "-0",
            "1.5e-3",
            "-12E+4",
            " true ",
            "null",
            "false",
            r#""a\"b\\c\/\b\f\n\r\t\u00e9""#,
            "[]",
            "{}",
            r#"[1,"2",{"3":[true,null]}]"#,
            "\t[ 1 , 2 ]\r\n",
            r#"{"a":{"b":[]} , "c" : 1}"#,
            "\"grüße €\"",
        ] {
            assert!(valid(text), "{text}");
            assert!(serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok());
        }
    }

    #[test]
    fn rejects_what_serde_json_rejects() {
        for text in [
            "",
            " ",
            "01",
            "1.",
            ".5",
            "1e",
            "-",
            "+1",
            "tru",
            "nul",
            "[",
            "]",
            "[1,]",
            "[,1]",
            "{\"a\"}",
            "{\"a\":}",
            "{a:1}",
            "{\"a\":1,}",
            "\"abc",
            "\"\\x\"",
            "\"\\u12g4\"",
            "\"\u{1}\"",
            "[1 2]",
            "1 2",
            "[]]",
            "{}}",
            "[}",
            "{]",
            "\"a\"\"b\"",
        ] {
            assert_eq!(scan(text, 64, None), Err(ScanError::Invalid), "{text:?}");
            assert!(serde_json::from_str::<serde::de::IgnoredAny>(text).is_err());
        }
    }

    #[test]
    fn limits_depth_without_recursion() {
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        assert_eq!(scan(&deep, 32, None), Err(ScanError::TooDeep));
        let ok = format!("{}{}", "[".repeat(32), "]".repeat(32));
        assert!(scan(&ok, 32, None).is_ok());
        let huge = format!("{}1{}", "[{\"a\":".repeat(50_000), "}]".repeat(50_000));
        assert!(scan(&huge, usize::MAX, None).is_ok());
    }

    #[test]
    fn reports_shape_and_first_element() {
        let found = scan(r#" [ "name" , 1 ] "#, 8, None).unwrap();
        assert_eq!(found.top, Top::Array);
        assert_eq!(found.first, Some(r#""name""#));
        assert_eq!(scan("[]", 8, None).unwrap().first, None);
        assert_eq!(
            scan(r#"[[1,[2]],3]"#, 8, None).unwrap().first,
            Some("[1,[2]]")
        );
        assert_eq!(scan("{}", 8, None).unwrap().top, Top::Object);
        assert_eq!(scan("\"x\"", 8, None).unwrap().top, Top::String);
        assert_eq!(scan("12", 8, None).unwrap().top, Top::Scalar);
    }

    #[test]
    fn skips_plain_string_bytes_in_chunks() {
        // Every position of each special byte, across the 8-byte chunk boundaries.
        for len in 0..24 {
            for special in [b'"', b'\\', 0x01, 0x1f] {
                let mut text = vec![b'a'; len];
                text.extend_from_slice("é€".as_bytes());
                let stop = text.len();
                text.push(special);
                text.extend_from_slice(b"tail\"");
                let text = String::from_utf8(text).unwrap();
                let scanner = Scanner {
                    text: &text,
                    bytes: text.as_bytes(),
                    max_depth: 1,
                    attachments: None,
                    first_only: false,
                };
                assert_eq!(scanner.skip_plain(0), stop, "{len} {special}");
            }
        }
    }

    #[test]
    fn scan_first_stops_after_the_first_element() {
        let found = scan_first(r#"[ "a" , this is not read"#).unwrap();
        assert_eq!(found.first, Some(r#""a""#));
        assert_eq!(scan_first("[]").unwrap().first, None);
        assert_eq!(scan_first("{}").unwrap().top, Top::Object);
        assert_eq!(scan_first("[x"), Err(ScanError::Invalid));
    }

    #[test]
    fn checks_placeholders() {
        let ok = |text: &str, count: u64| scan(text, 8, Some(count)).unwrap().placeholders_ok;
        assert!(ok(r#"["a",{"_placeholder":true,"num":0}]"#, 1));
        assert!(!ok(r#"["a",{"_placeholder":true,"num":1}]"#, 1));
        assert!(!ok(r#"["a",{"_placeholder":true}]"#, 1));
        assert!(!ok(r#"["a",{"_placeholder":true,"num":-1}]"#, 1));
        assert!(!ok(r#"["a",{"_placeholder":true,"num":0.5}]"#, 1));
        assert!(ok(r#"["a",{"num":0,"_placeholder":true}]"#, 1));
        assert!(ok(r#"["a",{"_placeholder":false,"num":9}]"#, 1));
        assert!(ok(r#"{"\u005fplaceholder":true,"num":0}"#, 1));
        assert!(!ok(r#"{"\u005fplaceholder":true,"num":3}"#, 1));
        // Nested deeper, and inside a placeholder nothing is looked at.
        assert!(!ok(r#"[{"x":[{"_placeholder":true,"num":5}]}]"#, 2));
        assert!(ok(
            r#"[{"_placeholder":true,"num":0,"x":{"_placeholder":true,"num":5}}]"#,
            1
        ));
        // Without an attachment count, placeholders are plain objects.
        assert!(
            scan(r#"[{"_placeholder":true,"num":5}]"#, 8, None)
                .unwrap()
                .placeholders_ok
        );
    }
}
