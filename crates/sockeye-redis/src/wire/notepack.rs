//! msgpack in the dialect of `notepack.io` 3.0.1, the codec of Node's Redis adapter.
//!
//! Decoding reads what notepack writes and what its decoder accepts, with the JavaScript
//! meaning a Node node gives it on the way to its clients:
//! - `bin 8/16/32` (a `Buffer`) and ext type 0 (a legacy `ArrayBuffer`) become Socket.IO
//!   placeholders `{"_placeholder":true,"num":i}`, numbered in document order, whose bytes are
//!   in [`Decoded::attachments`];
//! - the timestamp extension (type -1, 32/64/96 bit) and the legacy `d7 00` millisecond date
//!   become `Date.prototype.toISOString()` text (`"2026-11-26T22:45:00.014Z"`), or `null` for an
//!   invalid date (what `JSON.stringify` writes);
//! - `d4 00 00` is `undefined`: `null` in an array or at the top, and a map key with it is left
//!   out (as `JSON.stringify` does);
//! - any other extension is `[type, <bin>]`;
//! - strings are UTF-8 with invalid sequences replaced by U+FFFD (Node's `toString("utf8")`);
//!   map keys that are numbers, booleans or nil become their JavaScript string; integer-like
//!   keys come first in ascending order, a repeated key keeps its first place and its last value,
//!   and `__proto__` is dropped, as a JavaScript object does;
//! - floats that are whole numbers become integers (`1.0` is the JavaScript number `1`),
//!   NaN and infinities `null`.
//!
//! Encoding writes what notepack writes for the same JavaScript value: integers in the smallest
//! int form (`1.0` is `01`), other numbers as `float64` (`cb`), strings, arrays and maps in their
//! smallest fix/8/16/32 form, placeholders as `bin` of their attachment.
//!
//! Limits: nesting deeper than [`MAX_DEPTH`] fails with [`WireError::TooLarge`]; a declared
//! array, map, string or bin length larger than the bytes left fails before anything is
//! allocated, so a small message never allocates more than a small multiple of its own size.
//!
//! ```
//! use sockeye_redis::wire::notepack;
//! use serde_json::json;
//!
//! let bytes = [0x81, 0xa3, b'b', b'i', b'n', 0xc4, 0x03, 1, 2, 3];
//! let decoded = notepack::decode(&bytes).unwrap();
//! assert_eq!(decoded.json, json!({"bin": {"_placeholder": true, "num": 0}}));
//! assert_eq!(decoded.attachments[0].as_ref(), &[1, 2, 3]);
//! assert_eq!(notepack::encode(&decoded.json, &decoded.attachments).unwrap(), bytes);
//! assert_eq!(notepack::encode(&json!(1.0), &[]).unwrap(), [0x01]);
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;

use bytes::Bytes;
use rmp::Marker;
use rmp::encode as enc;
use serde_json::{Map, Number, Value};

use super::WireError;

/// How deeply arrays and maps may nest, in decoding and encoding.
pub const MAX_DEPTH: usize = 100;

/// The largest time value of a JavaScript `Date`, in milliseconds (`TimeClip`).
const MAX_DATE_MS: f64 = 8.64e15;

/// A decoded msgpack document.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The document as JSON, binary values as placeholders.
    pub json: Value,
    /// The binary values, in placeholder order.
    pub attachments: Vec<Bytes>,
}

/// Decodes one msgpack document in notepack.io's dialect.
///
/// # Errors
/// [`WireError::Msgpack`] for truncated or trailing bytes and reserved markers,
/// [`WireError::TooLarge`] past [`MAX_DEPTH`], [`WireError::Shape`] for a map key that a
/// JavaScript object cannot hold (an array, a map, a bin).
pub fn decode(bytes: &[u8]) -> Result<Decoded, WireError> {
    let tree = decode_tree(bytes)?;
    let mut attachments = Vec::new();
    let json = tree.into_value(&mut attachments);
    Ok(Decoded { json, attachments })
}

/// Encodes `json` as notepack.io would encode the same JavaScript value, the placeholders
/// (`{"_placeholder":true,"num":i}`) as `bin` of `attachments[i]`.
///
/// # Errors
/// [`WireError::Shape`] for a placeholder whose `num` is not an index of `attachments`,
/// [`WireError::TooLarge`] past [`MAX_DEPTH`] or for a length over `u32::MAX`.
pub fn encode(json: &Value, attachments: &[Bytes]) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::new();
    encode_value(json, attachments, &mut out, 0)?;
    Ok(out)
}

/// A decoded document before placeholders are numbered, with JavaScript's key order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tree {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Bin(Bytes),
    Array(Vec<Self>),
    Map(Vec<(String, Self)>),
}

impl Tree {
    /// The value of `key` when this is a map.
    pub(crate) fn get(&self, key: &str) -> Option<&Self> {
        match self {
            Self::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Removes and returns the value of `key` when this is a map.
    pub(crate) fn take(&mut self, key: &str) -> Option<Self> {
        match self {
            Self::Map(entries) => {
                let at = entries.iter().position(|(k, _)| k == key)?;
                Some(entries.remove(at).1)
            }
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The number as JavaScript sees it.
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::Int(i) => Some(i as f64),
            Self::UInt(u) => Some(u as f64),
            Self::Float(f) => Some(f),
            _ => None,
        }
    }

    /// JavaScript truthiness.
    pub(crate) fn is_truthy(&self) -> bool {
        match self {
            Self::Null => false,
            Self::Bool(b) => *b,
            Self::Int(i) => *i != 0,
            Self::UInt(u) => *u != 0,
            Self::Float(f) => *f != 0.0 && !f.is_nan(),
            Self::Str(s) => !s.is_empty(),
            _ => true,
        }
    }

    /// The JSON value, bins replaced by placeholders numbered from `attachments.len()`.
    pub(crate) fn into_value(self, attachments: &mut Vec<Bytes>) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(b),
            Self::Int(i) => Value::Number(i.into()),
            Self::UInt(u) => Value::Number(u.into()),
            Self::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            Self::Str(s) => Value::String(s),
            Self::Bin(b) => {
                let num = attachments.len();
                attachments.push(b);
                placeholder(num)
            }
            Self::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|t| t.into_value(attachments))
                    .collect(),
            ),
            Self::Map(entries) => {
                let mut map = Map::new();
                for (k, v) in entries {
                    let v = v.into_value(attachments);
                    map.insert(k, v);
                }
                Value::Object(map)
            }
        }
    }

    /// The JSON text in this tree's key order, bins replaced by placeholders numbered from
    /// `attachments.len()`.
    pub(crate) fn write_json(self, attachments: &mut Vec<Bytes>, out: &mut String) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            Self::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Self::UInt(u) => {
                let _ = write!(out, "{u}");
            }
            Self::Float(f) => match Number::from_f64(f) {
                Some(n) => {
                    let _ = write!(out, "{n}");
                }
                None => out.push_str("null"),
            },
            Self::Str(s) => push_json_str(out, &s),
            Self::Bin(b) => {
                let num = attachments.len();
                attachments.push(b);
                let _ = write!(out, r#"{{"_placeholder":true,"num":{num}}}"#);
            }
            Self::Array(items) => {
                out.push('[');
                for (i, t) in items.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    t.write_json(attachments, out);
                }
                out.push(']');
            }
            Self::Map(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_str(out, &k);
                    out.push(':');
                    v.write_json(attachments, out);
                }
                out.push('}');
            }
        }
    }
}

fn push_json_str(out: &mut String, s: &str) {
    // serde_json's escaping; writing a &str to a String cannot fail.
    if let Ok(text) = serde_json::to_string(s) {
        out.push_str(&text);
    }
}

fn placeholder(num: usize) -> Value {
    let mut map = Map::new();
    map.insert("_placeholder".into(), Value::Bool(true));
    map.insert("num".into(), Value::Number(num.into()));
    Value::Object(map)
}

/// Decodes one document into a [`Tree`].
pub(crate) fn decode_tree(bytes: &[u8]) -> Result<Tree, WireError> {
    let mut reader = Reader { buf: bytes, pos: 0 };
    let tree = reader.value(0)?.unwrap_or(Tree::Null);
    if reader.pos != bytes.len() {
        return Err(WireError::Msgpack("trailing bytes"));
    }
    Ok(tree)
}

/// Parses JSON text into a [`Tree`], keeping its key order (JavaScript's, as `JSON.parse`).
pub(crate) fn tree_from_json(text: &str) -> Result<Tree, WireError> {
    Ok(serde_json::from_str::<Tree>(text)?)
}

/// Encodes a [`Tree`]: bins as bin, placeholders as bin of `attachments`.
pub(crate) fn encode_tree(
    tree: &Tree,
    attachments: &[Bytes],
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), WireError> {
    match tree {
        Tree::Null => out.push(0xc0),
        Tree::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Tree::Int(i) => write_i64(out, *i),
        Tree::UInt(u) => write_u64(out, *u),
        Tree::Float(f) => write_f64(out, *f),
        Tree::Str(s) => write_str(out, s)?,
        Tree::Bin(b) => write_bin(out, b)?,
        Tree::Array(items) => {
            check_depth(depth)?;
            enc::write_array_len(out, len_u32(items.len())?).map_err(|_| WireError::TooLarge)?;
            for item in items {
                encode_tree(item, attachments, out, depth + 1)?;
            }
        }
        Tree::Map(entries) => {
            check_depth(depth)?;
            if matches!(tree.get("_placeholder"), Some(Tree::Bool(true))) {
                let num = tree.get("num").and_then(Tree::as_f64);
                return write_bin(out, attachment(attachments, num)?);
            }
            enc::write_map_len(out, len_u32(entries.len())?).map_err(|_| WireError::TooLarge)?;
            for (k, v) in entries {
                write_str(out, k)?;
                encode_tree(v, attachments, out, depth + 1)?;
            }
        }
    }
    Ok(())
}

fn encode_value(
    value: &Value,
    attachments: &[Bytes],
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), WireError> {
    match value {
        Value::Null => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                write_u64(out, u);
            } else if let Some(i) = n.as_i64() {
                write_i64(out, i);
            } else {
                write_f64(out, n.as_f64().unwrap_or(f64::NAN));
            }
        }
        Value::String(s) => write_str(out, s)?,
        Value::Array(items) => {
            check_depth(depth)?;
            enc::write_array_len(out, len_u32(items.len())?).map_err(|_| WireError::TooLarge)?;
            for item in items {
                encode_value(item, attachments, out, depth + 1)?;
            }
        }
        Value::Object(map) => {
            check_depth(depth)?;
            if map.get("_placeholder") == Some(&Value::Bool(true)) {
                let num = map.get("num").and_then(Value::as_f64);
                return write_bin(out, attachment(attachments, num)?);
            }
            enc::write_map_len(out, len_u32(map.len())?).map_err(|_| WireError::TooLarge)?;
            for (k, v) in map {
                write_str(out, k)?;
                encode_value(v, attachments, out, depth + 1)?;
            }
        }
    }
    Ok(())
}

fn attachment(attachments: &[Bytes], num: Option<f64>) -> Result<&Bytes, WireError> {
    num.filter(|n| n.fract() == 0.0 && *n >= 0.0)
        .and_then(|n| attachments.get(n as usize))
        .ok_or(WireError::Shape("placeholder number out of range"))
}

fn check_depth(depth: usize) -> Result<(), WireError> {
    if depth >= MAX_DEPTH {
        Err(WireError::TooLarge)
    } else {
        Ok(())
    }
}

fn len_u32(len: usize) -> Result<u32, WireError> {
    u32::try_from(len).map_err(|_| WireError::TooLarge)
}

// Writing into a Vec cannot fail: the rmp errors below are unreachable and ignored.
fn write_u64(out: &mut Vec<u8>, u: u64) {
    let _ = enc::write_uint(out, u);
}

fn write_i64(out: &mut Vec<u8>, i: i64) {
    let _ = enc::write_sint(out, i);
}

/// notepack: a whole finite number is an integer (`-0` and `1.0` included), anything else
/// float64. Whole numbers outside the 64-bit ranges stay float64 (notepack would write a
/// wrapped, wrong integer there).
fn write_f64(out: &mut Vec<u8>, f: f64) {
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_finite() && f.fract() == 0.0 {
        if (0.0..TWO_64).contains(&f) {
            return write_u64(out, f as u64);
        }
        if (-TWO_63..0.0).contains(&f) {
            return write_i64(out, f as i64);
        }
    }
    let _ = enc::write_f64(out, f);
}

fn write_str(out: &mut Vec<u8>, s: &str) -> Result<(), WireError> {
    enc::write_str_len(out, len_u32(s.len())?).map_err(|_| WireError::TooLarge)?;
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn write_bin(out: &mut Vec<u8>, b: &[u8]) -> Result<(), WireError> {
    enc::write_bin_len(out, len_u32(b.len())?).map_err(|_| WireError::TooLarge)?;
    out.extend_from_slice(b);
    Ok(())
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

const TRUNCATED: WireError = WireError::Msgpack("truncated");

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.remaining() {
            return Err(TRUNCATED);
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }
    fn i8(&mut self) -> Result<i8, WireError> {
        Ok(i8::from_be_bytes(self.array()?))
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, WireError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn len(&mut self, width: u8) -> Result<usize, WireError> {
        Ok(match width {
            1 => usize::from(self.u8()?),
            2 => usize::from(self.u16()?),
            _ => self.u32()? as usize,
        })
    }

    fn bin(&mut self, n: usize) -> Result<Tree, WireError> {
        Ok(Tree::Bin(Bytes::copy_from_slice(self.bytes(n)?)))
    }

    fn str(&mut self, n: usize) -> Result<Tree, WireError> {
        Ok(Tree::Str(
            String::from_utf8_lossy(self.bytes(n)?).into_owned(),
        ))
    }

    /// `[type, <bin>]`, notepack's reading of an extension it does not know.
    fn ext(&mut self, kind: i8, n: usize) -> Result<Tree, WireError> {
        let bin = self.bin(n)?;
        Ok(Tree::Array(vec![Tree::Int(i64::from(kind)), bin]))
    }

    /// One value; `None` for `undefined`.
    fn value(&mut self, depth: usize) -> Result<Option<Tree>, WireError> {
        let marker = Marker::from_u8(self.u8()?);
        let tree = match marker {
            Marker::FixPos(v) => Tree::UInt(u64::from(v)),
            Marker::FixNeg(v) => Tree::Int(i64::from(v)),
            Marker::Null => Tree::Null,
            Marker::True => Tree::Bool(true),
            Marker::False => Tree::Bool(false),
            Marker::U8 => Tree::UInt(u64::from(self.u8()?)),
            Marker::U16 => Tree::UInt(u64::from(self.u16()?)),
            Marker::U32 => Tree::UInt(u64::from(self.u32()?)),
            Marker::U64 => Tree::UInt(u64::from_be_bytes(self.array()?)),
            Marker::I8 => Tree::Int(i64::from(self.i8()?)),
            Marker::I16 => Tree::Int(i64::from(i16::from_be_bytes(self.array()?))),
            Marker::I32 => Tree::Int(i64::from(self.i32()?)),
            Marker::I64 => Tree::Int(i64::from_be_bytes(self.array()?)),
            Marker::F32 => number(f64::from(f32::from_be_bytes(self.array()?))),
            Marker::F64 => number(f64::from_be_bytes(self.array()?)),
            Marker::FixStr(n) => self.str(usize::from(n))?,
            Marker::Str8 => {
                let n = self.len(1)?;
                self.str(n)?
            }
            Marker::Str16 => {
                let n = self.len(2)?;
                self.str(n)?
            }
            Marker::Str32 => {
                let n = self.len(4)?;
                self.str(n)?
            }
            Marker::Bin8 => {
                let n = self.len(1)?;
                self.bin(n)?
            }
            Marker::Bin16 => {
                let n = self.len(2)?;
                self.bin(n)?
            }
            Marker::Bin32 => {
                let n = self.len(4)?;
                self.bin(n)?
            }
            Marker::FixArray(n) => self.list(usize::from(n), depth)?,
            Marker::Array16 => {
                let n = self.len(2)?;
                self.list(n, depth)?
            }
            Marker::Array32 => {
                let n = self.len(4)?;
                self.list(n, depth)?
            }
            Marker::FixMap(n) => self.map(usize::from(n), depth)?,
            Marker::Map16 => {
                let n = self.len(2)?;
                self.map(n, depth)?
            }
            Marker::Map32 => {
                let n = self.len(4)?;
                self.map(n, depth)?
            }
            Marker::FixExt1 => match self.i8()? {
                0 => {
                    self.bytes(1)?;
                    return Ok(None);
                }
                kind => self.ext(kind, 1)?,
            },
            Marker::FixExt2 => {
                let kind = self.i8()?;
                self.ext(kind, 2)?
            }
            Marker::FixExt4 => match self.i8()? {
                -1 => js_date(f64::from(self.u32()?) * 1e3),
                kind => self.ext(kind, 4)?,
            },
            Marker::FixExt8 => match self.i8()? {
                0 => {
                    let hi = f64::from(self.i32()?) * 4_294_967_296.0;
                    js_date(hi + f64::from(self.u32()?))
                }
                -1 => {
                    let hi = self.u32()?;
                    let lo = self.u32()?;
                    let seconds = f64::from(hi & 3) * 4_294_967_296.0 + f64::from(lo);
                    js_date(seconds * 1e3 + f64::from(hi >> 2) / 1e6)
                }
                kind => self.ext(kind, 8)?,
            },
            Marker::FixExt16 => {
                let kind = self.i8()?;
                self.ext(kind, 16)?
            }
            Marker::Ext8 | Marker::Ext16 | Marker::Ext32 => {
                let width = match marker {
                    Marker::Ext8 => 1,
                    Marker::Ext16 => 2,
                    _ => 4,
                };
                let n = self.len(width)?;
                match self.i8()? {
                    0 => self.bin(n)?,
                    -1 if width == 1 => {
                        if n != 12 {
                            return Err(WireError::Msgpack("timestamp 96 of a wrong length"));
                        }
                        let nanos = f64::from(self.u32()?);
                        let hi = f64::from(self.i32()?) * 4_294_967_296.0;
                        let seconds = hi + f64::from(self.u32()?);
                        js_date(seconds * 1e3 + nanos / 1e6)
                    }
                    kind => self.ext(kind, n)?,
                }
            }
            Marker::Reserved => return Err(WireError::Msgpack("reserved marker 0xc1")),
        };
        Ok(Some(tree))
    }

    fn list(&mut self, n: usize, depth: usize) -> Result<Tree, WireError> {
        check_depth(depth)?;
        // Every element takes at least one byte.
        if n > self.remaining() {
            return Err(TRUNCATED);
        }
        let mut items = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            items.push(self.value(depth + 1)?.unwrap_or(Tree::Null));
        }
        Ok(Tree::Array(items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Tree, WireError> {
        check_depth(depth)?;
        if n > self.remaining() / 2 {
            return Err(TRUNCATED);
        }
        let mut object = JsObject::with_capacity(n.min(1024), true);
        for _ in 0..n {
            let key = match self.value(depth + 1)? {
                None => "undefined".to_owned(),
                Some(key) => js_key(key)?,
            };
            let value = self.value(depth + 1)?;
            object.set(key, value);
        }
        Ok(object.finish())
    }
}

/// A JavaScript number from a msgpack float: whole numbers as integers, NaN and infinities
/// as `null` (what `JSON.stringify` writes).
fn number(f: f64) -> Tree {
    if !f.is_finite() {
        return Tree::Null;
    }
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        return Tree::Int(f as i64);
    }
    Tree::Float(f)
}

/// The property key JavaScript makes of a decoded map key.
fn js_key(key: Tree) -> Result<String, WireError> {
    Ok(match key {
        Tree::Str(s) => s,
        Tree::Null => "null".to_owned(),
        Tree::Bool(b) => b.to_string(),
        Tree::Int(i) => i.to_string(),
        Tree::UInt(u) => u.to_string(),
        Tree::Float(f) => Number::from_f64(f).map_or_else(|| "NaN".to_owned(), |n| n.to_string()),
        Tree::Bin(_) | Tree::Array(_) | Tree::Map(_) => {
            return Err(WireError::Shape("map key that is not a string or number"));
        }
    })
}

/// Builds a map with JavaScript's own-property semantics.
struct JsObject {
    entries: Vec<(String, Option<Tree>)>,
    index: HashMap<String, usize>,
    /// `object[key] = value` (notepack) rather than `JSON.parse`'s own data properties.
    assign: bool,
}

impl JsObject {
    fn with_capacity(n: usize, assign: bool) -> Self {
        Self {
            entries: Vec::with_capacity(n),
            index: HashMap::new(),
            assign,
        }
    }

    /// A repeated key keeps its place and takes the new value; with `assign`, `__proto__` is
    /// not an own property.
    fn set(&mut self, key: String, value: Option<Tree>) {
        if self.assign && key == "__proto__" {
            return;
        }
        if let Some(&at) = self.index.get(&key) {
            self.entries[at].1 = value;
            return;
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push((key, value));
    }

    /// Integer-like keys first, ascending, then the others in insertion order; `undefined`
    /// values left out.
    fn finish(self) -> Tree {
        let mut entries: Vec<(String, Tree)> = self
            .entries
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        if entries.iter().any(|(k, _)| array_index(k).is_some()) {
            entries.sort_by_key(|(k, _)| array_index(k).map_or((1, 0), |i| (0, i)));
        }
        Tree::Map(entries)
    }
}

/// The index when `key` is a canonical JavaScript array index (`0` .. `2^32 - 2`).
fn array_index(key: &str) -> Option<u32> {
    if key.is_empty() || key.len() > 10 || (key.len() > 1 && key.starts_with('0')) {
        return None;
    }
    if !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse::<u32>().ok().filter(|i| *i != u32::MAX)
}

/// `new Date(ms)` as it reaches a client: `toISOString()`, or `null` for an invalid date.
fn js_date(ms: f64) -> Tree {
    if !ms.is_finite() || ms.abs() > MAX_DATE_MS {
        return Tree::Null;
    }
    Tree::Str(iso_string(ms.trunc() as i64))
}

/// `Date.prototype.toISOString` of a valid time value.
pub(crate) fn iso_string(ms: i64) -> String {
    const DAY_MS: i64 = 86_400_000;
    let days = ms.div_euclid(DAY_MS);
    let in_day = ms.rem_euclid(DAY_MS);
    let (year, month, day) = civil_from_days(days);
    let mut out = String::with_capacity(27);
    if (0..=9999).contains(&year) {
        let _ = write!(out, "{year:04}");
    } else if year < 0 {
        let _ = write!(out, "-{:06}", -year);
    } else {
        let _ = write!(out, "+{year:06}");
    }
    let _ = write!(
        out,
        "-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    );
    out
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl<'de> serde::Deserialize<'de> for Tree {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> serde::de::Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }
    fn visit_none<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Tree, E> {
        Ok(Tree::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Tree, E> {
        Ok(Tree::Str(v))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Tree>()? {
            items.push(item);
        }
        Ok(Tree::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut object = JsObject::with_capacity(0, false);
        while let Some((k, v)) = map.next_entry::<String, Tree>()? {
            object.set(k, Some(v));
        }
        Ok(object.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(bytes: &[u8]) -> String {
        let mut out = String::new();
        decode_tree(bytes)
            .expect("decodes")
            .write_json(&mut Vec::new(), &mut out);
        out
    }

    #[allow(clippy::needless_pass_by_value)]
    fn enc(v: Value) -> Vec<u8> {
        encode(&v, &[]).expect("encodes")
    }

    #[test]
    fn numbers_take_notepacks_forms() {
        assert_eq!(enc(json!(1.0)), [0x01]);
        assert_eq!(enc(json!(-0.0)), [0x00]);
        assert_eq!(enc(json!(127)), [0x7f]);
        assert_eq!(enc(json!(128)), [0xcc, 0x80]);
        assert_eq!(enc(json!(65536)), [0xce, 0, 1, 0, 0]);
        assert_eq!(enc(json!(4_294_967_296u64)), [0xcf, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(enc(json!(-1)), [0xff]);
        assert_eq!(enc(json!(-32)), [0xe0]);
        assert_eq!(enc(json!(-33)), [0xd0, 0xdf]);
        assert_eq!(enc(json!(-129)), [0xd1, 0xff, 0x7f]);
        assert_eq!(enc(json!(-2_147_483_649i64))[0], 0xd3);
        assert_eq!(enc(json!(1.5)), [0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
        assert_eq!(enc(json!(1e300))[0], 0xcb);
        assert_eq!(enc(json!(-3.0)), [0xfd]);
        // Decoding: whole floats are integers, float32 widens, NaN is null.
        assert_eq!(text(&[0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]), "1");
        assert_eq!(text(&[0xca, 0x3f, 0, 0, 0]), "0.5");
        assert_eq!(text(&[0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1]), "null");
        assert_eq!(
            text(&[0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]),
            "-2"
        );
    }

    #[test]
    fn strings_arrays_maps_bins_take_the_smallest_form() {
        assert_eq!(enc(json!("a".repeat(31)))[0], 0xbf);
        assert_eq!(enc(json!("a".repeat(32)))[..2], [0xd9, 32]);
        assert_eq!(enc(json!("a".repeat(256)))[..3], [0xda, 1, 0]);
        assert_eq!(enc(json!("a".repeat(65536)))[..5], [0xdb, 0, 1, 0, 0]);
        assert_eq!(enc(Value::Array(vec![json!(0); 15]))[0], 0x9f);
        assert_eq!(enc(Value::Array(vec![json!(0); 16]))[..3], [0xdc, 0, 16]);
        let map: Map<String, Value> = (0..16).map(|i| (format!("k{i:02}"), json!(i))).collect();
        assert_eq!(enc(Value::Object(map))[..3], [0xde, 0, 16]);
        let p = json!({"_placeholder": true, "num": 0});
        let big = Bytes::from(vec![7u8; 256]);
        assert_eq!(encode(&p, &[big]).unwrap()[..3], [0xc5, 1, 0]);
        assert_eq!(
            encode(&p, &[Bytes::from_static(b"x")]).unwrap(),
            [0xc4, 1, b'x']
        );
        assert!(matches!(encode(&p, &[]), Err(WireError::Shape(_))));
        let bad = json!({"_placeholder": true, "num": 0.5});
        assert!(encode(&bad, &[Bytes::new()]).is_err());
        assert_eq!(enc(json!(null)), [0xc0]);
        assert_eq!(enc(json!([true, false])), [0x92, 0xc3, 0xc2]);
    }

    #[test]
    fn timestamps_become_iso_strings() {
        // 2026-11-26T22:45:00.014Z, as notepack writes a Date with milliseconds (timestamp 64).
        let (s, ns) = (1_795_733_100u64, 14_000_000u64);
        let word = (ns << 34) | s;
        let mut ts64 = vec![0xd7, 0xff];
        ts64.extend_from_slice(&word.to_be_bytes());
        assert_eq!(text(&ts64), r#""2026-11-26T22:45:00.014Z""#);
        // timestamp 32
        let mut ts32 = vec![0xd6, 0xff];
        ts32.extend_from_slice(&1_795_733_100u32.to_be_bytes());
        assert_eq!(text(&ts32), r#""2026-11-26T22:45:00.000Z""#);
        // timestamp 96, before 1970
        let mut ts96 = vec![0xc7, 12, 0xff, 0, 0, 0, 0];
        ts96.extend_from_slice(&(-1i64).to_be_bytes());
        assert_eq!(text(&ts96), r#""1969-12-31T23:59:59.000Z""#);
        // legacy d7 00: milliseconds
        let mut legacy = vec![0xd7, 0x00];
        legacy.extend_from_slice(&1_795_733_100_014i64.to_be_bytes());
        assert_eq!(text(&legacy), r#""2026-11-26T22:45:00.014Z""#);
        // beyond JavaScript's dates: an invalid Date, which JSON.stringify writes as null
        let mut far = vec![0xd7, 0x00];
        far.extend_from_slice(&8_640_000_000_000_001i64.to_be_bytes());
        assert_eq!(text(&far), "null");
        assert!(decode(&[0xc7, 11, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert_eq!(
            iso_string(253_402_300_800_000),
            "+010000-01-01T00:00:00.000Z"
        );
        assert_eq!(
            iso_string(-62_198_755_200_000),
            "-000001-01-01T00:00:00.000Z"
        );
        assert_eq!(iso_string(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            iso_string(8_640_000_000_000_000),
            "+275760-09-13T00:00:00.000Z"
        );
    }

    #[test]
    fn undefined_and_extensions_read_as_node_reads_them() {
        // {a: undefined, b: 1} and [undefined]
        assert_eq!(
            text(&[0x82, 0xa1, b'a', 0xd4, 0, 0, 0xa1, b'b', 1]),
            r#"{"b":1}"#
        );
        assert_eq!(text(&[0x91, 0xd4, 0, 0]), "[null]");
        assert_eq!(text(&[0xd4, 0, 0]), "null");
        // ext 0: a legacy ArrayBuffer, binary like a bin
        let d = decode(&[0xc7, 2, 0, 0xaa, 0xbb]).unwrap();
        assert_eq!(d.json, json!({"_placeholder": true, "num": 0}));
        assert_eq!(d.attachments[0].as_ref(), &[0xaa, 0xbb]);
        // another ext: [type, <bin>]
        let d = decode(&[0xd5, 5, 0xaa, 0xbb]).unwrap();
        assert_eq!(d.json, json!([5, {"_placeholder": true, "num": 0}]));
        let d = decode(&[0xc8, 0, 1, 0xfe, 9]).unwrap();
        assert_eq!(d.json, json!([-2, {"_placeholder": true, "num": 0}]));
        // bins are numbered in document order
        let d = decode(&[0x92, 0xc4, 1, 1, 0xc6, 0, 0, 0, 1, 2]).unwrap();
        assert_eq!(
            d.attachments,
            [Bytes::from_static(&[1]), Bytes::from_static(&[2])]
        );
        assert_eq!(d.json[1], json!({"_placeholder": true, "num": 1}));
    }

    #[test]
    fn keys_follow_javascript_objects() {
        // {"b":1,"1":2,"a":3,"0":4,"b":5} -> integer keys first, repeated key keeps its place
        let bytes = [
            0x85, 0xa1, b'b', 1, 0xa1, b'1', 2, 0xa1, b'a', 3, 0xa1, b'0', 4, 0xa1, b'b', 5,
        ];
        assert_eq!(text(&bytes), r#"{"0":4,"1":2,"b":5,"a":3}"#);
        // numeric, boolean and nil keys are strings; __proto__ is no own property
        assert_eq!(
            text(&[
                0x83, 0x07, 1, 0xc3, 2, 0xa9, b'_', b'_', b'p', b'r', b'o', b't', b'o', b'_', b'_',
                3
            ]),
            r#"{"7":1,"true":2}"#
        );
        assert!(decode(&[0x81, 0x90, 1]).is_err());
        // invalid UTF-8 is replaced, as Buffer.toString does
        assert_eq!(text(&[0xa2, 0xff, b'a']), "\"\u{fffd}a\"");
        // JSON text keeps __proto__ (JSON.parse makes it an own property) and its order
        let mut out = String::new();
        tree_from_json(r#"{"z":1,"__proto__":2,"a":3}"#)
            .unwrap()
            .write_json(&mut Vec::new(), &mut out);
        assert_eq!(out, r#"{"z":1,"__proto__":2,"a":3}"#);
    }

    #[test]
    fn limits_hold_before_allocating() {
        // An array32 / map32 / str32 / bin32 of 4 G elements in 5 bytes fails at once.
        for marker in [0xdd, 0xdf, 0xdb, 0xc6, 0xc9] {
            let r = decode(&[marker, 0xff, 0xff, 0xff, 0xff, 0]);
            assert!(matches!(r, Err(WireError::Msgpack(_))), "{marker:x}");
        }
        let nested = |depth: usize| {
            let mut b = vec![0x91; depth];
            b.push(0xc0);
            b
        };
        assert!(decode(&nested(MAX_DEPTH)).is_ok());
        assert!(matches!(
            decode(&nested(MAX_DEPTH + 1)),
            Err(WireError::TooLarge)
        ));
        let mut deep = json!(null);
        for _ in 0..=MAX_DEPTH {
            deep = json!([deep]);
        }
        assert!(matches!(encode(&deep, &[]), Err(WireError::TooLarge)));
        assert!(matches!(decode(&[0xc1]), Err(WireError::Msgpack(_))));
        assert!(matches!(decode(&[0xc0, 0xc0]), Err(WireError::Msgpack(_))));
        assert!(matches!(decode(&[]), Err(WireError::Msgpack(_))));
        assert!(matches!(decode(&[0xcd, 1]), Err(WireError::Msgpack(_))));
    }
}
