//! Quarantine: changes a revoked device uploads are never merged and never dropped. They wait,
//! sealed like case documents, until an admin reads them and releases them into the case or
//! discards them; both decisions are audited.

use fieldcase_core::crypto::{open, seal};
use fieldcase_core::ids::{CaseId, DeviceId, UserId};
use fieldcase_core::model::VisitNote;
use rusqlite::{Connection, OptionalExtension, params};

use crate::cases::CaseVault;
use crate::error::ServerError;
use crate::store::audit;

/// One quarantined upload, as an admin sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineEntry {
    /// Its id.
    pub id: uuid::Uuid,
    /// The revoked device that sent it.
    pub device: DeviceId,
    /// That device's user.
    pub user: UserId,
    /// The case it would change.
    pub case: CaseId,
    /// When it arrived (Unix seconds).
    pub received_at: i64,
    /// `None` while waiting; `released` or `discarded` once decided.
    pub decision: Option<String>,
}

/// What a quarantined upload would add to its case, for an admin to read before deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinePreview {
    /// The entry.
    pub entry: QuarantineEntry,
    /// Notes it adds or changes, as they would read once released.
    pub notes: Vec<VisitNote>,
}

fn aad(id: &uuid::Uuid) -> Vec<u8> {
    let mut aad = b"fieldcase-server/quarantine/".to_vec();
    aad.extend_from_slice(id.as_bytes());
    aad
}

/// Keeps an upload from a revoked device, sealed, for an admin to decide on.
pub fn hold(
    conn: &Connection,
    vault: &CaseVault,
    device: DeviceId,
    user: UserId,
    case: CaseId,
    changes: &[u8],
    now: i64,
) -> Result<uuid::Uuid, ServerError> {
    let id = uuid::Uuid::now_v7();
    let sealed = seal(vault.key(), &aad(&id), changes)?;
    conn.execute(
        "INSERT INTO quarantine (id, device_id, user_id, case_id, received_at, changes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id.to_string(), device.to_string(), user.to_string(), case.to_string(), now, sealed],
    )?;
    audit(
        &mut &*conn,
        now,
        "quarantine_held",
        Some(user.as_uuid()),
        Some(device.as_uuid()),
    )?;
    Ok(id)
}

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<QuarantineEntry> {
    let parse = |i: usize, s: String| {
        s.parse::<uuid::Uuid>().map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                i,
                rusqlite::types::Type::Text,
                "bad id".into(),
            )
        })
    };
    Ok(QuarantineEntry {
        id: parse(0, r.get(0)?)?,
        device: DeviceId::from_uuid(parse(1, r.get(1)?)?),
        user: UserId::from_uuid(parse(2, r.get(2)?)?),
        case: CaseId::from_uuid(parse(3, r.get(3)?)?),
        received_at: r.get(4)?,
        decision: r.get(5)?,
    })
}

/// Every quarantined upload, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<QuarantineEntry>, ServerError> {
    let mut stmt = conn.prepare(
        "SELECT id, device_id, user_id, case_id, received_at, decision FROM quarantine ORDER BY received_at, id",
    )?;
    let rows = stmt.query_map([], entry)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn load(
    conn: &Connection,
    vault: &CaseVault,
    id: uuid::Uuid,
) -> Result<(QuarantineEntry, Vec<u8>), ServerError> {
    let row = conn
        .query_row(
            "SELECT id, device_id, user_id, case_id, received_at, decision, changes FROM quarantine WHERE id = ?1",
            [id.to_string()],
            |r| Ok((entry(r)?, r.get::<_, Vec<u8>>(6)?)),
        )
        .optional()?
        .ok_or(ServerError::UnknownQuarantine)?;
    if row.0.decision.is_some() {
        return Err(ServerError::QuarantineDecided);
    }
    let changes = open(vault.key(), &aad(&id), &row.1, "quarantine")?;
    Ok((row.0, changes.to_vec()))
}

/// Reads a quarantined upload that waits for a decision: the notes it would add or change.
pub fn preview(
    conn: &Connection,
    vault: &CaseVault,
    id: uuid::Uuid,
) -> Result<QuarantinePreview, ServerError> {
    let (entry, changes) = load(conn, vault, id)?;
    // Changed here only to show what it would add: dropped after, never kept in memory.
    let mut doc = crate::cases::load_doc(conn, vault, entry.case)?.doc;
    let before = doc.notes()?;
    doc.apply_encoded_changes(&changes)?;
    let notes = doc
        .notes()?
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    Ok(QuarantinePreview { entry, notes })
}

/// Releases a quarantined upload into its case: merged like any sync, so other devices get it at
/// their next sync; audited.
pub fn release(
    conn: &mut Connection,
    vault: &CaseVault,
    id: uuid::Uuid,
    now: i64,
) -> Result<(), ServerError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (entry, changes) = load(&tx, vault, id)?;
    let mut loaded = crate::cases::load_doc(&tx, vault, entry.case)?;
    loaded.doc.apply_encoded_changes(&changes)?;
    crate::case_docs::store(&tx, vault, &mut loaded, None, now)?;
    decide(&tx, &entry, "released", now)?;
    tx.commit()?;
    vault.keep([loaded]);
    Ok(())
}

/// Discards a quarantined upload: the case stays as it is; the sealed changes are erased; audited.
pub fn discard(
    conn: &mut Connection,
    vault: &CaseVault,
    id: uuid::Uuid,
    now: i64,
) -> Result<(), ServerError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (entry, _) = load(&tx, vault, id)?;
    tx.execute(
        "UPDATE quarantine SET changes = X'' WHERE id = ?1",
        [id.to_string()],
    )?;
    decide(&tx, &entry, "discarded", now)?;
    tx.commit()?;
    Ok(())
}

fn decide(
    conn: &Connection,
    entry: &QuarantineEntry,
    decision: &str,
    now: i64,
) -> Result<(), ServerError> {
    conn.execute(
        "UPDATE quarantine SET decision = ?2, decided_at = ?3 WHERE id = ?1",
        params![entry.id.to_string(), decision, now],
    )?;
    audit(
        &mut &*conn,
        now,
        &format!("quarantine_{decision}"),
        Some(entry.user.as_uuid()),
        Some(entry.device.as_uuid()),
    )?;
    Ok(())
}
