//! [`AckTable`]: pending acknowledgements and their deadlines, as a pure data structure.
//!
//! The broker keeps one table per namespace, keyed by (socket, ack id). One driver task per
//! namespace sleeps until [`AckTable::poll_timeout`] and then calls
//! [`AckTable::handle_timeout`]; there is no timer per socket or per acknowledgement.
//!
//! Call protocol, as for the other sans-IO types:
//! 1. [`insert`](AckTable::insert) when a packet asking for an ack is sent;
//! 2. [`remove`](AckTable::remove) when the ack arrives (or the socket goes away);
//! 3. after either, re-read [`poll_timeout`](AckTable::poll_timeout) (it only moves earlier on
//!    insert);
//! 4. at that instant, [`handle_timeout`](AckTable::handle_timeout) hands back what expired.

use std::cmp::{Ordering, Reverse};
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// Pending acknowledgements keyed by `K`, each with a deadline and a value `V` (whoever waits
/// for the ack).
#[derive(Debug)]
pub struct AckTable<K, V> {
    entries: HashMap<K, Pending<V>>,
    deadlines: BinaryHeap<Reverse<Deadline<K>>>,
    next_seq: u64,
}

#[derive(Debug)]
struct Pending<V> {
    seq: u64,
    value: V,
}

#[derive(Debug)]
struct Deadline<K> {
    at: Instant,
    seq: u64,
    key: K,
}

impl<K> PartialEq for Deadline<K> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<K> Eq for Deadline<K> {}

impl<K> PartialOrd for Deadline<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for Deadline<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl<K: Hash + Eq + Clone, V> Default for AckTable<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq + Clone, V> AckTable<K, V> {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            entries: HashMap::new(),
            deadlines: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    /// Registers a pending ack. A previous entry with the same key is replaced and returned.
    pub fn insert(&mut self, key: K, deadline: Instant, value: V) -> Option<V> {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.deadlines.push(Reverse(Deadline {
            at: deadline,
            seq,
            key: key.clone(),
        }));
        let old = self.entries.insert(key, Pending { seq, value });
        self.compact();
        old.map(|p| p.value)
    }

    /// Takes the entry for an ack that arrived (or whose socket went away).
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let value = self.entries.remove(key).map(|p| p.value);
        self.compact();
        value
    }

    /// Takes every entry whose key matches `f` (a socket's entries when it disconnects).
    pub fn remove_where(&mut self, mut f: impl FnMut(&K) -> bool, out: &mut Vec<(K, V)>) {
        let keys: Vec<K> = self.entries.keys().filter(|k| f(k)).cloned().collect();
        for key in keys {
            if let Some(p) = self.entries.remove(&key) {
                out.push((key, p.value));
            }
        }
        self.compact();
    }

    /// The earliest deadline, if any entry is pending. May be earlier than needed after a
    /// removal; [`handle_timeout`](Self::handle_timeout) then finds nothing to expire.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse(d)| d.at)
    }

    /// Expires every entry whose deadline is at or before `now`, appending them to `expired`
    /// in deadline order.
    pub fn handle_timeout(&mut self, now: Instant, expired: &mut Vec<(K, V)>) {
        while let Some(Reverse(first)) = self.deadlines.peek() {
            if first.at > now {
                break;
            }
            let Some(Reverse(deadline)) = self.deadlines.pop() else {
                break;
            };
            if let Entry::Occupied(slot) = self.entries.entry(deadline.key)
                && slot.get().seq == deadline.seq
            {
                let (key, pending) = slot.remove_entry();
                expired.push((key, pending.value));
            }
        }
    }

    /// How many acks are pending.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no ack is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether an ack is pending for `key`.
    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// How many deadlines the heap holds, stale ones included (for leak tests).
    pub fn deadline_count(&self) -> usize {
        self.deadlines.len()
    }

    /// Drops stale deadlines once they outnumber live entries, so memory follows the live set.
    fn compact(&mut self) {
        if self.deadlines.len() <= 2 * self.entries.len() + 32 {
            return;
        }
        let entries = &self.entries;
        self.deadlines
            .retain(|Reverse(d)| entries.get(&d.key).is_some_and(|p| p.seq == d.seq));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn expires_in_deadline_order_and_skips_removed() {
        let t0 = Instant::now();
        let mut table = AckTable::new();
        table.insert(1u64, t0 + Duration::from_secs(3), "c");
        table.insert(2, t0 + Duration::from_secs(1), "a");
        table.insert(3, t0 + Duration::from_secs(2), "b");
        assert_eq!(table.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(table.remove(&3), Some("b"));
        let mut out = Vec::new();
        table.handle_timeout(t0, &mut out);
        assert!(out.is_empty());
        table.handle_timeout(t0 + Duration::from_secs(2), &mut out);
        assert_eq!(out, [(2, "a")]);
        out.clear();
        table.handle_timeout(t0 + Duration::from_secs(10), &mut out);
        assert_eq!(out, [(1, "c")]);
        assert!(table.is_empty());
        assert_eq!(table.poll_timeout(), None);
    }

    #[test]
    fn reinsert_replaces_and_old_deadline_is_stale() {
        let t0 = Instant::now();
        let mut table = AckTable::new();
        table.insert(1u64, t0 + Duration::from_secs(1), 'a');
        assert_eq!(table.insert(1, t0 + Duration::from_secs(5), 'b'), Some('a'));
        let mut out = Vec::new();
        table.handle_timeout(t0 + Duration::from_secs(2), &mut out);
        assert!(out.is_empty());
        assert!(table.contains(&1));
        table.handle_timeout(t0 + Duration::from_secs(5), &mut out);
        assert_eq!(out, [(1, 'b')]);
    }

    #[test]
    fn memory_follows_the_live_set() {
        let t0 = Instant::now();
        let mut table = AckTable::new();
        for i in 0..10_000u64 {
            table.insert(i, t0 + Duration::from_secs(60), ());
            table.remove(&i);
        }
        assert!(table.is_empty());
        assert!(table.deadline_count() <= 33);
        let mut out = Vec::new();
        table.insert(7, t0, ());
        table.remove_where(|k| *k == 7, &mut out);
        assert_eq!(out, [(7, ())]);
    }
}
