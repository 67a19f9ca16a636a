//! Quarantine: changes a revoked device uploads are never merged and never dropped. They wait,
//! sealed like case documents, until an admin reads them and releases them into the case or
//! discards them; both decisions are audited.

use fieldcase_core::crypto::{open, seal};
use fieldcase_core::ids::{CaseId, DeviceId, UserId};
use fieldcase_core::model::VisitNote;

use super::audit;
use super::rows::parse_uuid;
use crate::error::ServerError;
use crate::sql_params;
use crate::storage::case_docs::CaseVault;
use crate::storage::case_docs::WithDocs;
use crate::storage::sql::{Row, Sql, SqlError};

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

/// The shape of the two decisions, [`release`] and [`discard`], for callers that pick one.
pub type Decision =
    fn(&mut dyn Sql, &CaseVault, uuid::Uuid, i64) -> Result<WithDocs<()>, ServerError>;

fn aad(id: &uuid::Uuid) -> Vec<u8> {
    let mut aad = b"fieldcase-server/quarantine/".to_vec();
    aad.extend_from_slice(id.as_bytes());
    aad
}

/// Keeps an upload from a revoked device, sealed, for an admin to decide on.
pub fn hold(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    device: DeviceId,
    user: UserId,
    case: CaseId,
    changes: &[u8],
    now: i64,
) -> Result<uuid::Uuid, ServerError> {
    let id = uuid::Uuid::now_v7();
    let sealed = seal(vault.key(), &aad(&id), changes)?;
    sql.execute(
        "INSERT INTO quarantine (id, device_id, user_id, case_id, received_at, changes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        sql_params![
            &id.to_string(),
            &device.to_string(),
            &user.to_string(),
            &case.to_string(),
            now,
            &sealed
        ],
    )?;
    audit::record(
        sql,
        now,
        "quarantine_held",
        Some(user.as_uuid()),
        Some(device.as_uuid()),
    )?;
    Ok(id)
}

fn entry(r: &Row) -> Result<QuarantineEntry, SqlError> {
    Ok(QuarantineEntry {
        id: parse_uuid(&r.get::<String>(0)?)?,
        device: DeviceId::from_uuid(parse_uuid(&r.get::<String>(1)?)?),
        user: UserId::from_uuid(parse_uuid(&r.get::<String>(2)?)?),
        case: CaseId::from_uuid(parse_uuid(&r.get::<String>(3)?)?),
        received_at: r.get(4)?,
        decision: r.get(5)?,
    })
}

/// Every quarantined upload, oldest first, decided ones included.
pub fn list(sql: &mut dyn Sql) -> Result<Vec<QuarantineEntry>, ServerError> {
    let rows = sql.query_all(
        "SELECT id, device_id, user_id, case_id, received_at, decision FROM quarantine ORDER BY received_at, id",
        &[],
    )?;
    Ok(rows.iter().map(entry).collect::<Result<Vec<_>, _>>()?)
}

fn load(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    id: uuid::Uuid,
) -> Result<(QuarantineEntry, Vec<u8>), ServerError> {
    let row = sql
        .query_opt(
            "SELECT id, device_id, user_id, case_id, received_at, decision, changes FROM quarantine WHERE id = ?1",
            sql_params![&id.to_string()],
        )?
        .ok_or(ServerError::UnknownQuarantine)?;
    let row = (entry(&row)?, row.get::<Vec<u8>>(6)?);
    if row.0.decision.is_some() {
        return Err(ServerError::QuarantineDecided);
    }
    let changes = open(vault.key(), &aad(&id), &row.1, "quarantine")?;
    Ok((row.0, changes.to_vec()))
}

/// Reads a quarantined upload that waits for a decision: the notes it would add or change.
pub fn preview(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    id: uuid::Uuid,
) -> Result<QuarantinePreview, ServerError> {
    let (entry, changes) = load(sql, vault, id)?;
    // Changed here only to show what it would add: dropped after, never kept in memory.
    let mut doc = crate::office::cases::load_doc(sql, vault, entry.case)?.doc;
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
    sql: &mut dyn Sql,
    vault: &CaseVault,
    id: uuid::Uuid,
    now: i64,
) -> Result<WithDocs<()>, ServerError> {
    let (entry, changes) = load(sql, vault, id)?;
    let mut loaded = crate::office::cases::load_doc(sql, vault, entry.case)?;
    loaded.doc.apply_encoded_changes(&changes)?;
    crate::storage::case_docs::store(sql, vault, &mut loaded, None, now)?;
    decide(sql, &entry, "released", now)?;
    Ok(WithDocs::new((), [loaded]))
}

/// Discards a quarantined upload: the case stays as it is; the sealed changes are erased; audited.
pub fn discard(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    id: uuid::Uuid,
    now: i64,
) -> Result<WithDocs<()>, ServerError> {
    let (entry, _) = load(sql, vault, id)?;
    sql.execute(
        "UPDATE quarantine SET changes = ?2 WHERE id = ?1",
        sql_params![&id.to_string(), &[] as &[u8]],
    )?;
    decide(sql, &entry, "discarded", now)?;
    // Nothing stored, nothing to keep; the same shape as `release`.
    Ok(WithDocs::new((), []))
}

fn decide(
    sql: &mut dyn Sql,
    entry: &QuarantineEntry,
    decision: &str,
    now: i64,
) -> Result<(), ServerError> {
    sql.execute(
        "UPDATE quarantine SET decision = ?2, decided_at = ?3 WHERE id = ?1",
        sql_params![&entry.id.to_string(), decision, now],
    )?;
    audit::record(
        sql,
        now,
        &format!("quarantine_{decision}"),
        Some(entry.user.as_uuid()),
        Some(entry.device.as_uuid()),
    )?;
    Ok(())
}
