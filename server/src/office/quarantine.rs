//! Quarantine: changes a revoked device uploads are never merged without an admin's decision.
//! They wait, sealed like case documents, until an admin reads what they would change (every
//! difference: notes added, changed or deleted, tasks, the case's own fields) and releases them
//! into the case, through the same bounds checks as a sync, or discards them; both decisions
//! are audited.
//!
//! A revoked device cannot use quarantine to fill the office's disk or audit log: only uploads
//! for cases the device held are kept, at most [`MAX_HELD_BYTES_PER_DEVICE`] of them waiting at
//! once, and none once its wipe receipt has arrived.

use fieldcase_core::crypto::{open, seal};
use fieldcase_core::document::ReceivedDoc;
use fieldcase_core::ids::{CaseId, DeviceId, UserId};
use fieldcase_core::model::{Case, Task, VisitNote};

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

/// Most bytes of uploads that may wait in quarantine for one device at once (a phone's offline
/// edits of several days take far less); past it, further uploads of the device are not kept.
pub const MAX_HELD_BYTES_PER_DEVICE: i64 = 16 * 1024 * 1024;

/// Why an upload of a revoked device was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotHeld {
    /// The device never held that case (or purged it): nothing of it is the device's to give.
    NotItsCase,
    /// The device already sent its wipe receipt: it holds nothing any more.
    Wiped,
    /// The device's uploads waiting in quarantine reached [`MAX_HELD_BYTES_PER_DEVICE`].
    Full,
}

/// A field of the case that an upload changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// The field (`consent`, `risk_level`, `legal_status`, `status`, `client_code`,
    /// `assigned_workers`).
    pub field: &'static str,
    /// Its value now.
    pub before: String,
    /// Its value once released.
    pub after: String,
}

/// Everything a quarantined upload would change in its case, for an admin to read before
/// deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinePreview {
    /// The entry.
    pub entry: QuarantineEntry,
    /// Notes it adds or changes, as they would read once released.
    pub notes: Vec<VisitNote>,
    /// Notes it deletes, as they read now.
    pub deleted_notes: Vec<VisitNote>,
    /// Tasks it adds or changes, as they would read once released.
    pub tasks: Vec<Task>,
    /// Tasks it deletes, as they read now.
    pub deleted_tasks: Vec<Task>,
    /// The case's own fields it changes.
    pub fields: Vec<FieldChange>,
}

/// The items of `after` that are new or differ from `before`.
fn added_or_changed<T: PartialEq + Clone>(before: &[T], after: &[T]) -> Vec<T> {
    after
        .iter()
        .filter(|a| !before.contains(a))
        .cloned()
        .collect()
}

/// The items of `before` whose id is gone from `after`.
fn deleted<T: Clone, I: PartialEq>(before: &[T], after: &[T], id: impl Fn(&T) -> I) -> Vec<T> {
    before
        .iter()
        .filter(|b| !after.iter().any(|a| id(a) == id(b)))
        .cloned()
        .collect()
}

/// What differs between a case before and after an upload.
fn difference(entry: QuarantineEntry, before: &Case, after: &Case) -> QuarantinePreview {
    let notes = added_or_changed(&before.notes, &after.notes);
    let deleted_notes = deleted(&before.notes, &after.notes, |n| n.id);
    let tasks = added_or_changed(&before.tasks, &after.tasks);
    let deleted_tasks = deleted(&before.tasks, &after.tasks, |t| t.id);
    let workers = |c: &Case| {
        let mut ids: Vec<String> = c.assigned_workers.iter().map(ToString::to_string).collect();
        ids.sort();
        ids.join(", ")
    };
    let fields = [
        (
            "client_code",
            before.client_code.clone(),
            after.client_code.clone(),
        ),
        (
            "status",
            before.status.to_string(),
            after.status.to_string(),
        ),
        (
            "consent",
            before.consent.to_string(),
            after.consent.to_string(),
        ),
        (
            "risk_level",
            before.risk_level.to_string(),
            after.risk_level.to_string(),
        ),
        (
            "legal_status",
            before.legal_status.to_string(),
            after.legal_status.to_string(),
        ),
        ("assigned_workers", workers(before), workers(after)),
    ]
    .into_iter()
    .filter(|(_, b, a)| b != a)
    .map(|(field, before, after)| FieldChange {
        field,
        before,
        after,
    })
    .collect();
    QuarantinePreview {
        entry,
        notes,
        deleted_notes,
        tasks,
        deleted_tasks,
        fields,
    }
}

/// The shape of the two decisions, [`release`] and [`discard`], for callers that pick one.
pub type Decision =
    fn(&mut dyn Sql, &CaseVault, uuid::Uuid, i64) -> Result<WithDocs<()>, ServerError>;

fn aad(id: &uuid::Uuid) -> Vec<u8> {
    let mut aad = b"fieldcase-server/quarantine/".to_vec();
    aad.extend_from_slice(id.as_bytes());
    aad
}

/// Keeps an upload from a revoked device, sealed, for an admin to decide on, unless the device
/// never held the case, has sent its wipe receipt, or has [`MAX_HELD_BYTES_PER_DEVICE`] waiting
/// already ([`NotHeld`]; nothing is written then).
pub fn hold(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    device: DeviceId,
    user: UserId,
    case: CaseId,
    changes: &[u8],
    now: i64,
) -> Result<Result<uuid::Uuid, NotHeld>, ServerError> {
    let device_id = device.to_string();
    let wiped = sql
        .query_opt(
            "SELECT wiped_at FROM devices WHERE id = ?1",
            sql_params![&device_id],
        )?
        .map(|r| r.get::<Option<i64>>(0))
        .transpose()?
        .flatten()
        .is_some();
    if wiped {
        return Ok(Err(NotHeld::Wiped));
    }
    let held = sql
        .query_opt(
            "SELECT 1 FROM device_case_state WHERE device_id = ?1 AND case_id = ?2",
            sql_params![&device_id, &case.to_string()],
        )?
        .is_some();
    if !held {
        return Ok(Err(NotHeld::NotItsCase));
    }
    let waiting: i64 = sql
        .query_row(
            "SELECT CAST(coalesce(sum(length(changes)), 0) AS BIGINT) FROM quarantine
             WHERE device_id = ?1 AND decision IS NULL",
            sql_params![&device_id],
        )?
        .get(0)?;
    let id = uuid::Uuid::new_v4();
    let sealed = seal(vault.key(), &aad(&id), changes)?;
    let size = i64::try_from(sealed.len()).unwrap_or(i64::MAX);
    if waiting.saturating_add(size) > MAX_HELD_BYTES_PER_DEVICE {
        return Ok(Err(NotHeld::Full));
    }
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
    Ok(Ok(id))
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

/// The case a quarantined upload is for (to check who may see it before reading it).
pub fn case_of(sql: &mut dyn Sql, id: uuid::Uuid) -> Result<CaseId, ServerError> {
    let row = sql
        .query_opt(
            "SELECT case_id FROM quarantine WHERE id = ?1",
            sql_params![&id.to_string()],
        )?
        .ok_or(ServerError::UnknownQuarantine)?;
    row.get::<String>(0)?
        .parse()
        .map_err(|_| ServerError::Internal("stored case id is not an id"))
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

/// Reads a quarantined upload that waits for a decision: everything it would change. An upload
/// that would not pass a sync's checks is refused here as on release.
pub fn preview(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    id: uuid::Uuid,
) -> Result<QuarantinePreview, ServerError> {
    let (entry, changes) = load(sql, vault, id)?;
    // Changed here only to show what it would change: dropped after, never kept in memory.
    let mut doc = crate::office::cases::load_doc(sql, vault, entry.case)?.doc;
    let before = doc.case()?;
    doc.apply_checked(&changes, ReceivedDoc::load(entry.case, &changes))?;
    let after = doc.case()?;
    Ok(difference(entry, &before, &after))
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
    // The same checks as a sync: a revoked device's bytes are no more trusted than a live one's.
    loaded
        .doc
        .apply_checked(&changes, ReceivedDoc::load(entry.case, &changes))?;
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
