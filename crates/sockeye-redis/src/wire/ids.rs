//! Node and request ids in the shapes Node's adapters use.

const UID2_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A classic-mode node id or request id: `uid2(6)`, six characters of `A-Za-z0-9-_` from the
/// cryptographic thread-local generator (36 random bits, as Node's).
///
/// ```
/// let uid = sockeye_redis::wire::ids::classic_uid();
/// assert_eq!(uid.len(), 6);
/// assert!(uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
/// ```
pub fn classic_uid() -> String {
    let raw: [u8; 6] = rand::random();
    raw.iter()
        .map(|b| char::from(UID2_ALPHABET[usize::from(b & 63)]))
        .collect()
}

/// A sharded-mode node id or request id: 8 random bytes as 16 lowercase hex digits
/// (`randomBytes(8).toString("hex")`).
///
/// ```
/// let uid = sockeye_redis::wire::ids::sharded_uid();
/// assert_eq!(uid.len(), 16);
/// assert!(uid.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
/// ```
pub fn sharded_uid() -> String {
    let raw: [u8; 8] = rand::random();
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_differ_and_use_the_whole_alphabet() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let uid = classic_uid();
            for b in uid.bytes() {
                seen.insert(b);
            }
        }
        assert_eq!(seen.len(), 64);
        assert_ne!(sharded_uid(), sharded_uid());
    }
}
