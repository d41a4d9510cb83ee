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
    match attachments {
        // Monomorphized: the common, non-binary scan carries no placeholder bookkeeping.
        Some(count) => Scanner::<true, false> {
            text,
            bytes: text.as_bytes(),
            max_depth,
            attachments: count,
        }
        .run(),
        None => Scanner::<false, false> {
            text,
            bytes: text.as_bytes(),
            max_depth,
            attachments: u64::MAX,
        }
        .run(),
    }
}

/// Reads a top-level array only as far as its first element: returns the shape and that
/// element's raw text, without looking at the rest (which [`scan`] checked at decode).
pub(crate) fn scan_first(text: &str) -> Result<Scan<'_>, ScanError> {
    Scanner::<false, true> {
        text,
        bytes: text.as_bytes(),
        max_depth: usize::MAX,
        attachments: u64::MAX,
    }
    .run()
}

/// The scanner; `TRACK`: check placeholders against `attachments`; `FIRST_ONLY`: stop after
/// the first element of a top-level array.
struct Scanner<'a, const TRACK: bool, const FIRST_ONLY: bool> {
    text: &'a str,
    bytes: &'a [u8],
    max_depth: usize,
    /// The attachment count (only read when `TRACK`).
    attachments: u64,
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

/// Levels whose kind is kept in a bit of `Stack::objects`; deeper ones go to the heap (a
/// `u64` shifts in one instruction, a `u128` does not).
const INLINE_LEVELS: usize = 64;

/// Placeholder frames kept inline (no allocation for the usual shallow binary payload).
const INLINE_FRAMES: usize = 8;

/// The placeholder frames of the open levels: the first few inline, deeper ones on the heap.
struct Frames {
    len: usize,
    inline: [Frame; INLINE_FRAMES],
    spill: Vec<Frame>,
}

impl Frames {
    fn new() -> Self {
        Self {
            len: 0,
            inline: [Frame::default(); INLINE_FRAMES],
            spill: Vec::new(),
        }
    }

    fn push(&mut self) {
        if let Some(frame) = self.inline.get_mut(self.len) {
            *frame = Frame::default();
        } else {
            self.spill.push(Frame::default());
        }
        self.len += 1;
    }

    fn last_mut(&mut self) -> Option<&mut Frame> {
        let index = self.len.checked_sub(1)?;
        if index < INLINE_FRAMES {
            self.inline.get_mut(index)
        } else {
            self.spill.last_mut()
        }
    }

    fn pop(&mut self) -> Option<Frame> {
        let index = self.len.checked_sub(1)?;
        self.len = index;
        if index < INLINE_FRAMES {
            self.inline.get(index).copied()
        } else {
            self.spill.pop()
        }
    }
}

/// The open arrays and objects. Whether a level is an object is one bit (inline for the first
/// 64 levels); placeholder frames exist only when placeholders are checked (`TRACK`).
struct Stack<const TRACK: bool> {
    len: usize,
    objects: u64,
    deep_objects: Vec<bool>,
    frames: Frames,
}

impl<const TRACK: bool> Stack<TRACK> {
    fn new() -> Self {
        Self {
            len: 0,
            objects: 0,
            deep_objects: Vec::new(),
            frames: Frames::new(),
        }
    }

    #[inline]
    fn push(&mut self, object: bool) {
        if self.len < INLINE_LEVELS {
            let bit = 1u64 << self.len;
            if object {
                self.objects |= bit;
            } else {
                self.objects &= !bit;
            }
        } else {
            self.deep_objects.push(object);
        }
        if TRACK {
            self.frames.push();
        }
        self.len += 1;
    }

    /// Whether the innermost open level is an object; `None` at the top level.
    #[inline]
    fn top_is_object(&self) -> Option<bool> {
        let index = self.len.checked_sub(1)?;
        Some(if index < INLINE_LEVELS {
            (self.objects >> index) & 1 == 1
        } else {
            self.deep_objects.last().copied().unwrap_or_default()
        })
    }

    #[inline]
    fn top_frame(&mut self) -> Option<&mut Frame> {
        if TRACK { self.frames.last_mut() } else { None }
    }

    /// Closes the innermost level: returns whether its placeholders were valid.
    #[inline]
    fn pop(&mut self, attachments: u64) -> Option<bool> {
        let index = self.len.checked_sub(1)?;
        if index >= INLINE_LEVELS {
            self.deep_objects.pop();
        }
        self.len = index;
        if !TRACK {
            return Some(true);
        }
        Some(
            self.frames
                .pop()
                .is_none_or(|frame| frame_ok(&frame, attachments)),
        )
    }
}

/// Whether a closed container's placeholders are valid.
fn frame_ok(frame: &Frame, attachments: u64) -> bool {
    if frame.placeholder {
        frame.num.is_some_and(|num| num < attachments)
    } else {
        !frame.invalid
    }
}

impl<'a, const TRACK: bool, const FIRST_ONLY: bool> Scanner<'a, TRACK, FIRST_ONLY> {
    #[inline(always)]
    fn byte(&self, at: usize) -> Option<u8> {
        self.bytes.get(at).copied()
    }

    #[inline(always)]
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
        let mut stack = Stack::<TRACK>::new();
        // Where the first element of a top-level array starts (right after the `[`), until it
        // has been read.
        let mut first_start = 0;
        let mut first = None;
        let mut first_pending = top == Top::Array;

        loop {
            // A value starts at `at` (whitespace skipped).
            let mut done = match self.byte(at).ok_or(invalid)? {
                open @ (b'{' | b'[') => {
                    if stack.len >= self.max_depth {
                        return Err(ScanError::TooDeep);
                    }
                    let object = open == b'{';
                    stack.push(object);
                    at = self.skip_whitespace(at + 1);
                    if stack.len == 1 {
                        first_start = at;
                    }
                    let close = if object { b'}' } else { b']' };
                    if self.byte(at) == Some(close) {
                        at += 1;
                        Done::Container(stack.pop(self.attachments).ok_or(invalid)?)
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
                if first_pending && stack.len == 1 {
                    first_pending = false;
                    first = self.text.get(first_start..at);
                    if FIRST_ONLY {
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
                        done = Done::Container(stack.pop(self.attachments).ok_or(invalid)?);
                    }
                    _ => return Err(invalid),
                }
            }
        }
    }

    /// Reads `"key"` and `:` at `at`, records which key it is on the open object, and returns
    /// where its value starts.
    #[inline(always)]
    fn object_key(&self, at: usize, stack: &mut Stack<TRACK>) -> Result<usize, ScanError> {
        if self.byte(at) != Some(b'"') {
            return Err(ScanError::Invalid);
        }
        let (end, escaped) = self.string(at)?;
        if let Some(frame) = stack.top_frame() {
            frame.key = if escaped {
                key_of_escaped(self.text.get(at..end).unwrap_or_default())
            } else {
                key_of_plain(self.bytes.get(at..end).unwrap_or_default())
            };
        }
        let mut colon = end;
        if self.byte(colon) != Some(b':') {
            colon = self.skip_whitespace(colon);
            if self.byte(colon) != Some(b':') {
                return Err(ScanError::Invalid);
            }
        }
        Ok(self.skip_whitespace(colon + 1))
    }

    /// Reads the string starting with the quote at `at`: returns the position after its closing
    /// quote and whether it has escapes.
    #[inline(always)]
    fn string(&self, at: usize) -> Result<(usize, bool), ScanError> {
        let mut at = self.skip_plain(at + 1);
        if self.byte(at) == Some(b'"') {
            return Ok((at + 1, false));
        }
        // Escapes (or an error): the slower loop.
        loop {
            match self.byte(at) {
                Some(b'"') => return Ok((at + 1, true)),
                Some(b'\\') => {
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
            at = self.skip_plain(at);
        }
    }

    /// Skips what may stand unescaped in a string (anything but `"`, `\` and control
    /// characters), eight bytes at a time: returns the position of the first byte that may not.
    #[inline(always)]
    fn skip_plain(&self, mut at: usize) -> usize {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        // The classic "has a zero byte" and "has a byte less than n" tests: the lowest flagged
        // byte of each is exact (false positives only appear above a true one).
        while let Some(chunk) = self.bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
            let word = u64::from_le_bytes(*chunk);
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

    #[inline(always)]
    fn literal(&self, at: usize, word: &[u8]) -> Result<usize, ScanError> {
        if self.bytes.get(at..at + word.len()) == Some(word) {
            Ok(at + word.len())
        } else {
            Err(ScanError::Invalid)
        }
    }

    /// Reads a number: returns where it ends and its value when it is a non-negative integer
    /// that fits in a `u64` (only computed when `TRACK`: only placeholders care).
    #[inline(always)]
    fn number(&self, start: usize) -> Result<(usize, Option<u64>), ScanError> {
        let mut at = start;
        let negative = self.byte(at) == Some(b'-');
        if negative {
            at += 1;
        }
        match self.byte(at) {
            Some(b'0') => at += 1,
            Some(b'1'..=b'9') => at = self.digits(at + 1),
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
        let index = if !TRACK {
            None
        } else if !negative && at == integer_end {
            self.bytes
                .get(start..at)
                .and_then(crate::socketio::parse_u64)
        } else {
            self.text.get(start..at).and_then(integral_index)
        };
        Ok((at, index))
    }

    #[inline(always)]
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

/// The value of a number written with a sign, a fraction or an exponent (`-0`, `0.0`, `1e0`)
/// when it is a non-negative integer, as `JSON.parse` reads it: the reference accepts any
/// `num` that is a number in range, however it is written. `0.5`, `-1` and `1e400` are not.
#[cold]
fn integral_index(text: &str) -> Option<u64> {
    let value: f64 = text.parse().ok()?;
    // `-0.0 >= 0.0` holds, as `-0 >= 0` does in JavaScript. 2^53: past it, f64 skips integers.
    if value >= 0.0 && value.fract() == 0.0 && value <= 9_007_199_254_740_991.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(value as u64)
    } else {
        None
    }
}

/// What [`js_values`] rewrites.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rewrite {
    /// Numbers beyond `f64` (`1e400`, a 400-digit integer) become `null`.
    pub(crate) infinite_numbers: bool,
    /// `\u` escapes of unpaired UTF-16 surrogates become `\ufffd`.
    pub(crate) lone_surrogates: bool,
}

/// Rewrites well-formed JSON `text` so that `serde_json` reads every value `JSON.parse` reads:
/// see [`Rewrite`]. Borrows `text` when nothing changes. On malformed text the result is
/// unspecified (but still a string): callers check the JSON first.
pub(crate) fn js_values(text: &str, rewrite: Rewrite) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut replace = |start: usize, end: usize, with: &str, copied: &mut usize| {
        let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
        out.push_str(text.get(*copied..start).unwrap_or_default());
        out.push_str(with);
        *copied = end;
    };
    let byte = |at: usize| bytes.get(at).copied();
    let surrogate = |at: usize| -> Option<u32> {
        if byte(at) != Some(b'\\') || byte(at + 1) != Some(b'u') {
            return None;
        }
        let hex = text.get(at + 2..at + 6)?;
        u32::from_str_radix(hex, 16)
            .ok()
            .filter(|unit| (0xD800..0xE000).contains(unit))
    };
    let mut at = 0;
    while let Some(next) = byte(at) {
        match next {
            b'"' => {
                at += 1;
                while let Some(inner) = byte(at) {
                    match inner {
                        b'"' => break,
                        b'\\' => match surrogate(at) {
                            Some(high) if (0xD800..0xDC00).contains(&high) => {
                                if surrogate(at + 6).is_some_and(|low| low >= 0xDC00) {
                                    at += 12;
                                } else {
                                    if rewrite.lone_surrogates {
                                        replace(at, at + 6, "\\ufffd", &mut copied);
                                    }
                                    at += 6;
                                }
                            }
                            Some(_) => {
                                if rewrite.lone_surrogates {
                                    replace(at, at + 6, "\\ufffd", &mut copied);
                                }
                                at += 6;
                            }
                            None => at += 2,
                        },
                        _ => at += 1,
                    }
                }
                at += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = at;
                while matches!(
                    byte(at),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    at += 1;
                }
                if rewrite.infinite_numbers
                    && text
                        .get(start..at)
                        .and_then(|number| number.parse::<f64>().ok())
                        .is_some_and(f64::is_infinite)
                {
                    replace(start, at, "null", &mut copied);
                }
            }
            _ => at += 1,
        }
    }
    match out {
        Some(mut out) => {
            out.push_str(text.get(copied..).unwrap_or_default());
            std::borrow::Cow::Owned(out)
        }
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// Classifies a raw key without escapes (with its quotes).
fn key_of_plain(raw: &[u8]) -> Key {
    match raw {
        b"\"_placeholder\"" => Key::Placeholder,
        b"\"num\"" => Key::Num,
        _ => Key::Other,
    }
}

/// Classifies a raw key with escapes (with its quotes): decoded first, as `JSON.parse` would.
#[cold]
fn key_of_escaped(raw: &str) -> Key {
    serde_json::from_str::<String>(raw).map_or(Key::Other, |key| match key.as_str() {
        "_placeholder" => Key::Placeholder,
        "num" => Key::Num,
        _ => Key::Other,
    })
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
                let scanner = Scanner::<false, false> {
                    text: &text,
                    bytes: text.as_bytes(),
                    max_depth: 1,
                    attachments: u64::MAX,
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
    fn rewrites_what_serde_json_cannot_hold() {
        let both = Rewrite {
            infinite_numbers: true,
            lone_surrogates: true,
        };
        let numbers = Rewrite {
            infinite_numbers: true,
            lone_surrogates: false,
        };
        let hundreds = format!("[1{}]", "0".repeat(400));
        for (text, want) in [
            (
                r#"[1e400,-1E+400,1e308,-0,1e-400]"#,
                r#"[null,null,1e308,-0,1e-400]"#,
            ),
            (hundreds.as_str(), "[null]"),
            (r#"{"a":"1e400","b":1e400}"#, r#"{"a":"1e400","b":null}"#),
            (
                r#"["\ud800","\ud83d\ude00","\udc00x","\\ud800"]"#,
                r#"["\ufffd","\ud83d\ude00","\ufffdx","\\ud800"]"#,
            ),
            (r#"["\ud800\u0041"]"#, r#"["\ufffd\u0041"]"#),
            (
                r#"{"__proto__":{"x":18446744073709551616}}"#,
                r#"{"__proto__":{"x":18446744073709551616}}"#,
            ),
        ] {
            let rewritten = js_values(text, both);
            assert_eq!(rewritten, want, "{text}");
            assert!(
                serde_json::from_str::<serde_json::Value>(&rewritten).is_ok(),
                "{rewritten}"
            );
        }
        assert!(matches!(
            js_values(r#"[1,"a",{"b":[2.5e3]}]"#, both),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            js_values(r#"["\ud800",1e999]"#, numbers),
            r#"["\ud800",null]"#
        );
    }

    #[test]
    fn checks_placeholders() {
        let ok = |text: &str, count: u64| scan(text, 8, Some(count)).unwrap().placeholders_ok;
        assert!(ok(r#"["a",{"_placeholder":true,"num":0}]"#, 1));
        assert!(!ok(r#"["a",{"_placeholder":true,"num":1}]"#, 1));
        assert!(!ok(r#"["a",{"_placeholder":true}]"#, 1));
        assert!(!ok(r#"["a",{"_placeholder":true,"num":-1}]"#, 1));
        assert!(!ok(r#"["a",{"_placeholder":true,"num":0.5}]"#, 1));
        // Integral numbers however written, as `JSON.parse` reads them.
        for num in ["-0", "0.0", "0e5", "1e0", "1.0", "10E-1", "-0.0"] {
            assert!(
                ok(&format!(r#"["a",{{"_placeholder":true,"num":{num}}}]"#), 2),
                "{num}"
            );
        }
        for num in [
            "2e0", "-1e0", "1e400", "-1", "1.5", "\"0\"", "true", "null", "[0]",
        ] {
            assert!(
                !ok(&format!(r#"["a",{{"_placeholder":true,"num":{num}}}]"#), 2),
                "{num}"
            );
        }
        // Duplicate keys: the last one counts, as in `JSON.parse`.
        assert!(ok(r#"[{"_placeholder":true,"num":7,"num":0}]"#, 1));
        assert!(!ok(r#"[{"_placeholder":true,"num":0,"num":7}]"#, 1));
        assert!(ok(
            r#"[{"_placeholder":true,"_placeholder":false,"num":7}]"#,
            1
        ));
        // Reused: the same attachment twice is fine (the reference allows it too).
        assert!(ok(
            r#"[{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]"#,
            1
        ));
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
        // Deeper than the inline frames: the heap frames keep the same rules.
        let deep = |num: u64| {
            format!(
                "{}{{\"_placeholder\":true,\"num\":{num}}}{}",
                "[{\"a\":".repeat(10),
                "}]".repeat(10)
            )
        };
        assert!(scan(&deep(0), 64, Some(1)).unwrap().placeholders_ok);
        assert!(!scan(&deep(1), 64, Some(1)).unwrap().placeholders_ok);
        // Without an attachment count, placeholders are plain objects.
        assert!(
            scan(r#"[{"_placeholder":true,"num":5}]"#, 8, None)
                .unwrap()
                .placeholders_ok
        );
    }
}
