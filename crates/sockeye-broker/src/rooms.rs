//! [`RoomIndex`]: which sockets are in which rooms, as a pure data structure.
//!
//! Two maps kept consistent: room -> members and socket -> rooms. A room exists while it has a
//! member; the last member leaving deletes it. Every socket is also in the room named by its own
//! id; that room is implicit (not stored), so a socket costs no map entry for it.
//!
//! Members carry a value `V` (the broker stores the socket's handle there), so selecting the
//! recipients of a broadcast yields the handles directly: no second lookup per recipient.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use crate::id::{Room, SocketId};

/// What happened to rooms during one operation, in order. The broker turns them into room
/// lifecycle events for metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomEvent {
    /// The room got its first member.
    Created(Room),
    /// A socket joined the room.
    Joined(Room, SocketId),
    /// A socket left the room (by leaving or by disconnecting).
    Left(Room, SocketId),
    /// The room's last member left.
    Deleted(Room),
}

/// Room membership for one namespace on one node.
///
/// # Invariants (property-tested)
/// - a socket is listed in a room's members if and only if the room is listed in the socket's
///   rooms;
/// - no room without members is kept;
/// - a socket that left a room, or was removed, is in no member list for it.
#[derive(Debug)]
pub struct RoomIndex<V> {
    sockets: HashMap<SocketId, Member<V>>,
    rooms: HashMap<Room, HashMap<SocketId, V>>,
}

#[derive(Debug)]
struct Member<V> {
    value: V,
    rooms: HashSet<Room>,
}

/// Which sockets a broadcast or a selector operation reaches.
///
/// Empty `rooms` means every socket of the namespace. A socket is selected once even when it is
/// in several of the `rooms`, and never when it is in one of the `except` rooms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    /// Target rooms; empty for all sockets.
    pub rooms: Vec<Room>,
    /// Rooms whose members are excluded.
    pub except: Vec<Room>,
}

impl Selector {
    /// Every socket.
    pub fn all() -> Self {
        Self::default()
    }

    /// Whether the selector targets every socket (no room and no exception).
    pub fn is_all(&self) -> bool {
        self.rooms.is_empty() && self.except.is_empty()
    }
}

impl<V: Clone> Default for RoomIndex<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone> RoomIndex<V> {
    /// An empty index.
    pub fn new() -> Self {
        Self {
            sockets: HashMap::new(),
            rooms: HashMap::new(),
        }
    }

    /// Adds a socket with no rooms (besides its own). Returns `false`, and changes nothing, when
    /// the id is already present.
    pub fn insert(&mut self, id: SocketId, value: V) -> bool {
        match self.sockets.entry(id) {
            Entry::Occupied(_) => false,
            Entry::Vacant(slot) => {
                slot.insert(Member {
                    value,
                    rooms: HashSet::new(),
                });
                true
            }
        }
    }

    /// Removes a socket and its memberships. The socket's rooms come back sorted, with the
    /// events for the rooms it left (and deleted) appended to `events`.
    pub fn remove(&mut self, id: SocketId, events: &mut Vec<RoomEvent>) -> Option<(V, Vec<Room>)> {
        let member = self.sockets.remove(&id)?;
        let mut rooms: Vec<Room> = member.rooms.into_iter().collect();
        rooms.sort_unstable();
        for room in &rooms {
            self.unlink(room, id, events);
        }
        Some((member.value, rooms))
    }

    /// Adds a socket to a room. Returns `false` when the socket is unknown or already in it
    /// (its own room included).
    pub fn join(&mut self, id: SocketId, room: &Room, events: &mut Vec<RoomEvent>) -> bool {
        let Some(member) = self.sockets.get_mut(&id) else {
            return false;
        };
        if room.as_str() == id.as_str() || member.rooms.contains(room) {
            return false;
        }
        member.rooms.insert(room.clone());
        let value = member.value.clone();
        let members = match self.rooms.entry(room.clone()) {
            Entry::Occupied(slot) => slot.into_mut(),
            Entry::Vacant(slot) => {
                events.push(RoomEvent::Created(room.clone()));
                slot.insert(HashMap::new())
            }
        };
        members.insert(id, value);
        events.push(RoomEvent::Joined(room.clone(), id));
        true
    }

    /// Removes a socket from a room. Returns `false` when it was not in it. A socket cannot leave
    /// its own room.
    pub fn leave(&mut self, id: SocketId, room: &Room, events: &mut Vec<RoomEvent>) -> bool {
        let Some(member) = self.sockets.get_mut(&id) else {
            return false;
        };
        if !member.rooms.remove(room) {
            return false;
        }
        self.unlink(room, id, events);
        true
    }

    /// Removes a socket from every room it joined (it stays in its own room and in the index).
    pub fn leave_all(&mut self, id: SocketId, events: &mut Vec<RoomEvent>) {
        let Some(member) = self.sockets.get_mut(&id) else {
            return;
        };
        let mut rooms: Vec<Room> = member.rooms.drain().collect();
        rooms.sort_unstable();
        for room in &rooms {
            self.unlink(room, id, events);
        }
    }

    /// Whether the socket is present.
    pub fn contains(&self, id: SocketId) -> bool {
        self.sockets.contains_key(&id)
    }

    /// The value stored for a socket.
    pub fn value(&self, id: SocketId) -> Option<&V> {
        self.sockets.get(&id).map(|m| &m.value)
    }

    /// Whether the socket is in the room (its own room included).
    pub fn is_member(&self, id: SocketId, room: &str) -> bool {
        self.sockets
            .get(&id)
            .is_some_and(|m| room == id.as_str() || m.rooms.contains(room))
    }

    /// The rooms of a socket, its own room first, the others sorted. `None` for an unknown
    /// socket.
    pub fn rooms_of(&self, id: SocketId) -> Option<Vec<Room>> {
        let member = self.sockets.get(&id)?;
        let mut rooms: Vec<Room> = member.rooms.iter().cloned().collect();
        rooms.sort_unstable();
        rooms.insert(0, Room::from(id));
        Some(rooms)
    }

    /// How many sockets the index holds.
    pub fn socket_count(&self) -> usize {
        self.sockets.len()
    }

    /// How many rooms exist, not counting the implicit per-socket rooms.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// The rooms that exist, not counting the implicit per-socket rooms, in no particular order.
    pub fn rooms(&self) -> impl Iterator<Item = &Room> + '_ {
        self.rooms.keys()
    }

    /// How many sockets are in a room (1 for a socket's own room).
    pub fn room_size(&self, room: &str) -> usize {
        let stored = self.rooms.get(room);
        let own = self.own_room_member(room, stored);
        stored.map_or(0, HashMap::len) + usize::from(own.is_some())
    }

    /// Calls `f` once for every socket the selector matches, with no allocation when the
    /// selector names at most one room and no exception.
    pub fn select(&self, selector: &Selector, mut f: impl FnMut(SocketId, &V)) {
        let except = self.except_set(&selector.except);
        let mut emit = |id: SocketId, value: &V| {
            if !except.as_ref().is_some_and(|set| set.contains(&id)) {
                f(id, value);
            }
        };
        match selector.rooms.as_slice() {
            [] => {
                for (id, member) in &self.sockets {
                    emit(*id, &member.value);
                }
            }
            [room] => self.for_room(room, &mut emit),
            rooms => {
                let mut seen = HashSet::with_capacity(self.estimate(rooms));
                for room in rooms {
                    self.for_room(room, |id, value| {
                        if seen.insert(id) {
                            emit(id, value);
                        }
                    });
                }
            }
        }
    }

    /// The values of the selected sockets, appended to `out` (see [`RoomIndex::select`]).
    pub fn collect(&self, selector: &Selector, out: &mut Vec<V>) {
        self.select(selector, |_, value| out.push(value.clone()));
    }

    /// The ids of the selected sockets.
    pub fn select_ids(&self, selector: &Selector) -> Vec<SocketId> {
        let mut ids = Vec::new();
        self.select(selector, |id, _| ids.push(id));
        ids
    }

    /// Checks the invariants; used by the property tests. Returns a description of the first
    /// violation.
    ///
    /// # Errors
    /// A text naming the broken invariant.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (room, members) in &self.rooms {
            if members.is_empty() {
                return Err(format!("empty room {room} kept"));
            }
            for id in members.keys() {
                let listed = self.sockets.get(id).is_some_and(|m| m.rooms.contains(room));
                if !listed {
                    return Err(format!("{id} in members of {room} but not the reverse"));
                }
            }
        }
        for (id, member) in &self.sockets {
            for room in &member.rooms {
                if !self.rooms.get(room).is_some_and(|m| m.contains_key(id)) {
                    return Err(format!("{id} lists {room} but is not a member"));
                }
            }
        }
        Ok(())
    }

    fn unlink(&mut self, room: &Room, id: SocketId, events: &mut Vec<RoomEvent>) {
        if let Some(members) = self.rooms.get_mut(room) {
            if members.remove(&id).is_some() {
                events.push(RoomEvent::Left(room.clone(), id));
            }
            if members.is_empty() {
                self.rooms.remove(room);
                events.push(RoomEvent::Deleted(room.clone()));
            }
        }
    }

    fn own_room_member(
        &self,
        room: &str,
        stored: Option<&HashMap<SocketId, V>>,
    ) -> Option<(SocketId, &V)> {
        let id = SocketId::parse(room)?;
        let member = self.sockets.get(&id)?;
        // A socket is stored in a room named like its own id only if something wrote it there
        // by hand; never count it twice.
        (!stored.is_some_and(|m| m.contains_key(&id))).then_some((id, &member.value))
    }

    fn for_room(&self, room: &Room, mut f: impl FnMut(SocketId, &V)) {
        let stored = self.rooms.get(room);
        if let Some(members) = stored {
            for (id, value) in members {
                f(*id, value);
            }
        }
        if let Some((id, value)) = self.own_room_member(room.as_str(), stored) {
            f(id, value);
        }
    }

    fn except_set(&self, except: &[Room]) -> Option<HashSet<SocketId>> {
        if except.is_empty() {
            return None;
        }
        let mut set = HashSet::with_capacity(self.estimate(except));
        for room in except {
            self.for_room(room, |id, _| {
                set.insert(id);
            });
        }
        Some(set)
    }

    fn estimate(&self, rooms: &[Room]) -> usize {
        rooms
            .iter()
            .map(|r| self.rooms.get(r).map_or(1, HashMap::len))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ids(n: usize) -> Vec<SocketId> {
        (0..n).map(|_| SocketId::random()).collect()
    }

    fn sorted(mut v: Vec<SocketId>) -> Vec<SocketId> {
        v.sort_unstable();
        v
    }

    #[test]
    fn join_leave_emit_lifecycle_events() {
        let mut index = RoomIndex::new();
        let [a, b] = [SocketId::random(), SocketId::random()];
        let room = Room::new("r");
        let mut ev = Vec::new();
        assert!(index.insert(a, ()));
        assert!(index.insert(b, ()));
        assert!(index.join(a, &room, &mut ev));
        assert!(!index.join(a, &room, &mut ev));
        assert!(index.join(b, &room, &mut ev));
        assert_eq!(
            ev,
            [
                RoomEvent::Created(room.clone()),
                RoomEvent::Joined(room.clone(), a),
                RoomEvent::Joined(room.clone(), b)
            ]
        );
        ev.clear();
        assert!(index.leave(a, &room, &mut ev));
        assert!(!index.leave(a, &room, &mut ev));
        index.remove(b, &mut ev);
        assert_eq!(
            ev,
            [
                RoomEvent::Left(room.clone(), a),
                RoomEvent::Left(room.clone(), b),
                RoomEvent::Deleted(room.clone())
            ]
        );
        assert_eq!(index.room_count(), 0);
        index.check_invariants().unwrap();
    }

    #[test]
    fn own_room_is_implicit() {
        let mut index = RoomIndex::new();
        let [a, b] = [SocketId::random(), SocketId::random()];
        index.insert(a, 1);
        index.insert(b, 2);
        let mut ev = Vec::new();
        assert!(!index.join(a, &Room::from(a), &mut ev));
        assert!(ev.is_empty());
        assert_eq!(index.room_count(), 0);
        assert_eq!(index.room_size(a.as_str()), 1);
        assert!(index.is_member(a, a.as_str()));
        let selector = Selector {
            rooms: vec![Room::from(a)],
            except: vec![],
        };
        assert_eq!(index.select_ids(&selector), [a]);
        assert_eq!(index.rooms_of(a).unwrap(), [Room::from(a)]);
        // Another socket joining a room named like `a` (the app forbids it; the index copes).
        assert!(index.join(b, &Room::from(a), &mut ev));
        assert_eq!(sorted(index.select_ids(&selector)), sorted(vec![a, b]));
        assert_eq!(index.room_size(a.as_str()), 2);
    }

    #[test]
    fn several_rooms_give_one_copy_and_except_excludes() {
        let mut index = RoomIndex::new();
        let all = ids(5);
        let mut ev = Vec::new();
        for id in &all {
            index.insert(*id, ());
        }
        for id in &all[..4] {
            index.join(*id, &Room::new("x"), &mut ev);
        }
        for id in &all[2..] {
            index.join(*id, &Room::new("y"), &mut ev);
        }
        let both = Selector {
            rooms: vec![Room::new("x"), Room::new("y"), Room::new("x")],
            except: vec![],
        };
        assert_eq!(sorted(index.select_ids(&both)), sorted(all.clone()));
        let except = Selector {
            rooms: vec![Room::new("x")],
            except: vec![Room::new("y"), Room::from(all[0])],
        };
        assert_eq!(index.select_ids(&except), [all[1]]);
        let everyone_but = Selector {
            rooms: vec![],
            except: vec![Room::from(all[4])],
        };
        assert_eq!(
            sorted(index.select_ids(&everyone_but)),
            sorted(all[..4].to_vec())
        );
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(usize),
        Remove(usize),
        Join(usize, usize),
        Leave(usize, usize),
        LeaveAll(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..8usize).prop_map(Op::Insert),
            (0..8usize).prop_map(Op::Remove),
            (0..8usize, 0..6usize).prop_map(|(s, r)| Op::Join(s, r)),
            (0..8usize, 0..6usize).prop_map(|(s, r)| Op::Leave(s, r)),
            (0..8usize).prop_map(Op::LeaveAll),
        ]
    }

    proptest! {
        #[test]
        fn invariants_hold_through_any_sequence(ops in prop::collection::vec(op(), 0..200)) {
            let sockets = ids(8);
            let rooms: Vec<Room> = (0..6).map(|i| Room::new(&format!("room{i}"))).collect();
            let mut index = RoomIndex::new();
            // The model: which rooms each present socket is in.
            let mut model: HashMap<SocketId, HashSet<Room>> = HashMap::new();
            let mut ev = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(s) => {
                        let fresh = index.insert(sockets[s], s);
                        prop_assert_eq!(fresh, !model.contains_key(&sockets[s]));
                        model.entry(sockets[s]).or_default();
                    }
                    Op::Remove(s) => {
                        let removed = index.remove(sockets[s], &mut ev);
                        let expected = model.remove(&sockets[s]);
                        prop_assert_eq!(removed.is_some(), expected.is_some());
                        if let (Some((_, got)), Some(want)) = (removed, expected) {
                            prop_assert_eq!(got.into_iter().collect::<HashSet<_>>(), want);
                        }
                    }
                    Op::Join(s, r) => {
                        let joined = index.join(sockets[s], &rooms[r], &mut ev);
                        let want = model.get_mut(&sockets[s]).is_some_and(|m| m.insert(rooms[r].clone()));
                        prop_assert_eq!(joined, want);
                    }
                    Op::Leave(s, r) => {
                        let left = index.leave(sockets[s], &rooms[r], &mut ev);
                        let want = model.get_mut(&sockets[s]).is_some_and(|m| m.remove(&rooms[r]));
                        prop_assert_eq!(left, want);
                        prop_assert!(!index.is_member(sockets[s], rooms[r].as_str()));
                    }
                    Op::LeaveAll(s) => {
                        index.leave_all(sockets[s], &mut ev);
                        if let Some(m) = model.get_mut(&sockets[s]) { m.clear(); }
                    }
                }
                if let Err(e) = index.check_invariants() {
                    return Err(TestCaseError::fail(e));
                }
                // Membership matches the model, room by room.
                for room in &rooms {
                    let mut want: Vec<SocketId> = model.iter()
                        .filter(|(_, rs)| rs.contains(room)).map(|(id, _)| *id).collect();
                    want.sort_unstable();
                    let sel = Selector { rooms: vec![room.clone()], except: vec![] };
                    prop_assert_eq!(sorted(index.select_ids(&sel)), want.clone());
                    prop_assert_eq!(index.room_size(room.as_str()), want.len());
                }
                prop_assert_eq!(index.socket_count(), model.len());
                let live_rooms = model.values().flatten().collect::<HashSet<_>>().len();
                prop_assert_eq!(index.room_count(), live_rooms);
            }
            // Lifecycle events balance: every created room that no longer exists was deleted.
            let created = ev.iter().filter(|e| matches!(e, RoomEvent::Created(_))).count();
            let deleted = ev.iter().filter(|e| matches!(e, RoomEvent::Deleted(_))).count();
            prop_assert_eq!(created - deleted, index.room_count());
        }

        #[test]
        fn multi_room_selection_is_a_set_union_minus_except(
            memberships in prop::collection::vec(prop::collection::vec(0..5usize, 0..5), 1..20),
            targets in prop::collection::vec(0..5usize, 0..4),
            except in prop::collection::vec(0..5usize, 0..2),
        ) {
            let rooms: Vec<Room> = (0..5).map(|i| Room::new(&format!("r{i}"))).collect();
            let sockets = ids(memberships.len());
            let mut index = RoomIndex::new();
            let mut ev = Vec::new();
            for (id, rs) in sockets.iter().zip(&memberships) {
                index.insert(*id, ());
                for r in rs { index.join(*id, &rooms[*r], &mut ev); }
            }
            let sel = Selector {
                rooms: targets.iter().map(|r| rooms[*r].clone()).collect(),
                except: except.iter().map(|r| rooms[*r].clone()).collect(),
            };
            let got = index.select_ids(&sel);
            let unique: HashSet<_> = got.iter().copied().collect();
            prop_assert_eq!(unique.len(), got.len(), "a socket was selected twice");
            let want: HashSet<SocketId> = sockets.iter().zip(&memberships)
                .filter(|(_, rs)| targets.is_empty() || rs.iter().any(|r| targets.contains(r)))
                .filter(|(_, rs)| !rs.iter().any(|r| except.contains(r)))
                .map(|(id, _)| *id).collect();
            prop_assert_eq!(unique, want);
        }
    }
}
