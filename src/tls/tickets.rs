//! Session-ticket keys, made by the master and handed to every shard.
//!
//! Shards are processes and SO_REUSEPORT spreads a client's connections over all of them,
//! so a ticket sealed by one shard must open in every other: one key for all. Keys rotate
//! every `PERIOD` by a one-way ratchet (the next key is an HMAC of the current one), so
//! every process that was handed the same state computes the same key for a period on its
//! own, with no message from the master, and a key once dropped cannot be computed again
//! from a later one: tickets sealed before the previous period stop opening, as a
//! rotation's erasure should make them (the forward secrecy the ticket gives up is bounded
//! by two periods). A reload's new shards get the master's current state, so tickets
//! outlive reloads too.
//!
//! A ticket: the period it was sealed in (8 bytes), a random nonce (12) and the state
//! sealed with AES-256-GCM under that period's key, the period as associated data.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{hmac, rand};
use rustls::server::ProducesTickets;
use std::io;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// How long a key seals tickets; a ticket opens for one period more.
pub const PERIOD: u64 = 3600;

const KEY_LEN: usize = 32;
const MAGIC: &[u8; 4] = b"c10T";
const ENCODED_LEN: usize = MAGIC.len() + 8 + 2 * KEY_LEN;

/// The keys that seal session tickets: the current period's and the one before it.
#[derive(Clone, PartialEq, Eq)]
pub struct TicketKeys {
    /// The period the current key is for (Unix seconds / `PERIOD`).
    period: u64,
    current: [u8; KEY_LEN],
    previous: [u8; KEY_LEN],
}

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TicketKeys {{ period: {} }}", self.period)
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn next_key(key: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), b"c10k-server session ticket key");
    tag.as_ref().try_into().expect("HMAC-SHA256 is 32 bytes")
}

impl TicketKeys {
    /// New random keys for the current period (the master, at start).
    pub fn generate() -> io::Result<TicketKeys> {
        let (mut current, mut previous) = ([0; KEY_LEN], [0; KEY_LEN]);
        rand::fill(&mut current)
            .and_then(|()| rand::fill(&mut previous))
            .map_err(|_| io::Error::other("no randomness"))?;
        Ok(TicketKeys { period: unix_now() / PERIOD, current, previous })
    }

    /// Move to the key of `now` (Unix seconds), if its period began since. A clock that
    /// went back keeps the key it has.
    pub fn advance(&mut self, now: u64) {
        let target = now / PERIOD;
        if target <= self.period {
            return;
        }
        if target - self.period > 1 {
            // Skipped periods: both keys are past; the ratchet goes on from the current one
            // so every process lands on the same key.
            for _ in 0..(target - self.period - 1).min(1 << 20) {
                self.current = next_key(&self.current);
            }
        }
        self.previous = self.current;
        self.current = next_key(&self.current);
        self.period = target;
    }

    /// The keys as bytes, for a shard (across exec, in memory only the two share).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENCODED_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.period.to_be_bytes());
        out.extend_from_slice(&self.current);
        out.extend_from_slice(&self.previous);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<TicketKeys, String> {
        if bytes.len() != ENCODED_LEN || !bytes.starts_with(MAGIC) {
            return Err(format!("session ticket keys: {} bytes, not the {ENCODED_LEN} expected", bytes.len()));
        }
        let field = |at: usize, len: usize| &bytes[MAGIC.len() + at..MAGIC.len() + at + len];
        Ok(TicketKeys {
            period: u64::from_be_bytes(field(0, 8).try_into().expect("8 bytes")),
            current: field(8, KEY_LEN).try_into().expect("a key"),
            previous: field(8 + KEY_LEN, KEY_LEN).try_into().expect("a key"),
        })
    }

    fn key_for(&self, period: u64) -> Option<LessSafeKey> {
        let key = if period == self.period {
            &self.current
        } else if period + 1 == self.period {
            &self.previous
        } else {
            return None;
        };
        Some(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?))
    }

    fn seal(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let key = self.key_for(self.period)?;
        let mut nonce = [0; NONCE_LEN];
        rand::fill(&mut nonce).ok()?;
        let period = self.period.to_be_bytes();
        let mut sealed = Vec::with_capacity(8 + NONCE_LEN + plain.len() + 16);
        sealed.extend_from_slice(&period);
        sealed.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(period), &mut body).ok()?;
        sealed.extend_from_slice(&body);
        Some(sealed)
    }

    fn open(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        if ticket.len() < 8 + NONCE_LEN + 16 {
            return None;
        }
        let (period, rest) = ticket.split_at(8);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let key = self.key_for(u64::from_be_bytes(period.try_into().ok()?))?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = sealed.to_vec();
        let plain = key.open_in_place(nonce, Aad::from(period), &mut body).ok()?;
        let len = plain.len();
        body.truncate(len);
        Some(body)
    }
}

/// rustls' ticket sealer over the shared keys, advancing them with the clock.
#[derive(Debug)]
pub struct Ticketer(Mutex<TicketKeys>);

impl Ticketer {
    pub fn new(keys: TicketKeys) -> Ticketer {
        Ticketer(Mutex::new(keys))
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, TicketKeys> {
        // A shard is one thread; a poisoned lock would only mean a panic elsewhere, which
        // aborts the process first.
        let mut keys = self.0.lock().unwrap_or_else(|e| e.into_inner());
        keys.advance(unix_now());
        keys
    }
}

impl ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        PERIOD as u32
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.keys().seal(plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.keys().open(cipher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_opens_in_another_process_with_the_same_keys_for_one_period_more() {
        let keys = TicketKeys::generate().unwrap();
        let shard = TicketKeys::decode(&keys.encode()).unwrap();
        assert_eq!(shard, keys);
        let ticket = keys.seal(b"session state").unwrap();
        assert_eq!(shard.open(&ticket).as_deref(), Some(&b"session state"[..]));
        // Each process advances on its own clock and lands on the same keys.
        let (mut a, mut b) = (keys.clone(), shard.clone());
        let next = (keys.period + 1) * PERIOD;
        a.advance(next);
        b.advance(next + 10);
        assert_eq!(a, b);
        assert_eq!(b.open(&ticket).as_deref(), Some(&b"session state"[..]), "the previous key still opens");
        a.advance(next + PERIOD);
        assert_eq!(a.open(&ticket), None, "two periods on, the key is gone");
        let mut skipped = keys.clone();
        skipped.advance(next + PERIOD);
        assert_eq!(skipped, a, "periods skipped ratchet to the same key");
    }

    #[test]
    fn a_tampered_or_foreign_ticket_does_not_open() {
        let keys = TicketKeys::generate().unwrap();
        let mut ticket = keys.seal(b"state").unwrap();
        let last = ticket.len() - 1;
        ticket[last] ^= 1;
        assert_eq!(keys.open(&ticket), None);
        let other = TicketKeys::generate().unwrap();
        assert_eq!(other.open(&keys.seal(b"state").unwrap()), None);
        assert_eq!(keys.open(b"short"), None);
        assert!(TicketKeys::decode(b"c10T").is_err());
    }
}
