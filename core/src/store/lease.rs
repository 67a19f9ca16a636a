//! The offline lease: an enrolled store opens case data only while it holds a lease signed by its
//! office server that has not run out. Every successful sync brings a renewed lease; a phone kept
//! offline past it stops opening cases until a sync succeeds (which renews it, or wipes a revoked
//! phone).
//!
//! Why it cannot be flipped in the file: the server's public key is inside the sealed identity
//! row (no unlock without it), and a lease counts only if its Ed25519 signature verifies for this
//! device. Editing, deleting or rolling back the lease row yields no lease or an older one.
//! Platform shells can add a time-bound keystore key on top (see `docs/adr/0004`).

use ed25519_dalek::VerifyingKey;
use rusqlite::{Connection, OptionalExtension};

use super::records::Sealer;
use crate::error::{CoreError, Result};
use crate::protocol::Lease;

const LEASE_ROW: &str = "lease";

/// What decides whether case data may be opened.
pub(crate) struct LeaseGate {
    server: VerifyingKey,
    device: uuid::Uuid,
    /// End of the current valid lease, if any (Unix seconds).
    expires_at: Option<i64>,
}

impl LeaseGate {
    /// A gate with no lease yet (a store just enrolled: its first sync brings one).
    pub(crate) fn empty(server: VerifyingKey, device: uuid::Uuid) -> Self {
        Self {
            server,
            device,
            expires_at: None,
        }
    }

    /// Loads the stored lease for an enrolled store.
    pub(crate) fn load(
        conn: &Connection,
        sealer: &Sealer<'_>,
        server: VerifyingKey,
        device: uuid::Uuid,
    ) -> Result<Self> {
        let mut gate = Self::empty(server, device);
        let sealed: Option<Vec<u8>> = conn
            .query_row("SELECT value FROM meta WHERE name = ?1", [LEASE_ROW], |r| {
                r.get(0)
            })
            .optional()?;
        // A row that does not open, or a lease that does not verify, counts as no lease.
        if let Some(lease) = sealed.and_then(|s| {
            sealer
                .open_json::<Lease>("meta", LEASE_ROW.as_bytes(), 0, &s)
                .ok()
        }) {
            gate.accept(&lease);
        }
        Ok(gate)
    }

    /// Takes `lease` if it is signed by the server for this device; returns whether it was.
    pub(crate) fn accept(&mut self, lease: &Lease) -> bool {
        let valid = lease.verify(&self.server, &self.device);
        if valid {
            self.expires_at = Some(
                self.expires_at
                    .map_or(lease.expires_at, |e| e.max(lease.expires_at)),
            );
        }
        valid
    }

    /// Refuses with [`CoreError::LeaseExpired`] once the lease has run out at `now`.
    pub(crate) fn check(&self, now: i64) -> Result<()> {
        match self.expires_at {
            Some(end) if now <= end => Ok(()),
            _ => Err(CoreError::LeaseExpired),
        }
    }

    /// Stores a verified lease (inside the caller's transaction).
    pub(crate) fn store(conn: &Connection, sealer: &Sealer<'_>, lease: &Lease) -> Result<()> {
        sealer.put_meta(conn, LEASE_ROW, lease)
    }

    /// When the lease runs out, if there is one.
    pub(crate) fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }
}
