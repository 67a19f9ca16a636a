//! Certificate pins the devices hold: what each device last said it accepts (the signed
//! `x-fieldcase-pins` request header of a phone that holds more than one pin, recorded by the
//! HTTP layer's signed-request extractor), and who holds the office's next certificate, which
//! `admin tls status` shows and `admin tls rotate` requires of every active device.
//!
//! The certificate files themselves are the HTTP layer's (`http::tls`); this module knows only
//! fingerprints.

use fieldcase_core::protocol::{Fingerprint, format_pins};
use uuid::Uuid;

use super::audit;
use super::rows::parse_uuid;
use crate::error::SqlError;
use crate::sql_params;
use crate::storage::sql::Sql;

/// Audit action of a next certificate made ready (detail: its fingerprint).
pub const TLS_NEXT_PREPARED: &str = "tls_next_prepared";
/// Audit action of a switch to the next certificate (detail: `acknowledged` when every active
/// device held it, `forced` otherwise).
pub const TLS_ROTATED: &str = "tls_rotated";

/// Records the fingerprints a device says it holds (its signature over them was checked).
/// Writes only when they differ from what is stored, so a phone that says the same on every
/// request costs no write after the first.
pub fn record_pins(
    sql: &mut dyn Sql,
    device_id: &Uuid,
    pins: &[Fingerprint],
    now: i64,
) -> Result<(), SqlError> {
    let text = format_pins(pins);
    sql.execute(
        "UPDATE devices SET tls_pins = ?2, tls_pins_at = ?3
         WHERE id = ?1 AND (tls_pins IS NULL OR tls_pins <> ?2)",
        sql_params![&device_id.to_string(), &text, now],
    )?;
    Ok(())
}

/// One device that must hold the next certificate before the office switches to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePins {
    /// The device.
    pub device_id: Uuid,
    /// Its user's name.
    pub user_name: String,
    /// Whether an admin confirmed it (an unconfirmed device cannot make a request, so it
    /// cannot acknowledge anything until it is confirmed, or revoked).
    pub confirmed: bool,
    /// Whether it acknowledged the fingerprint asked about.
    pub acknowledged: bool,
    /// When it last said which pins it holds (Unix seconds), if ever.
    pub pins_at: Option<i64>,
    /// When it last synced, if ever.
    pub last_sync_at: Option<i64>,
}

/// Every active (not revoked) device, and whether it acknowledged holding `next`.
pub fn acknowledgements(
    sql: &mut dyn Sql,
    next: &Fingerprint,
) -> Result<Vec<DevicePins>, SqlError> {
    let rows = sql.query_all(
        "SELECT d.id, u.name, d.confirmed_at, d.tls_pins, d.tls_pins_at, d.last_sync_at
         FROM devices d JOIN users u ON u.id = d.user_id
         WHERE d.status = 'active'
         ORDER BY u.name, d.enrolled_at, d.id",
        &[],
    )?;
    let next = next.to_hex();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let pins: Option<String> = r.get(3)?;
        out.push(DevicePins {
            device_id: parse_uuid(&r.get::<String>(0)?)?,
            user_name: r.get(1)?,
            confirmed: r.get::<Option<i64>>(2)?.is_some(),
            acknowledged: pins.is_some_and(|p| p.split(',').any(|p| p == next)),
            pins_at: r.get(4)?,
            last_sync_at: r.get(5)?,
        });
    }
    Ok(out)
}

/// Audits that a next certificate was made ready.
pub fn record_prepared(sql: &mut dyn Sql, next: &Fingerprint, now: i64) -> Result<(), SqlError> {
    audit::record_detail(
        sql,
        now,
        TLS_NEXT_PREPARED,
        None,
        None,
        Some(&next.to_hex()),
    )
}

/// Audits a switch to the next certificate; `forced` when some active device had not
/// acknowledged it.
pub fn record_rotated(sql: &mut dyn Sql, forced: bool, now: i64) -> Result<(), SqlError> {
    let detail = if forced { "forced" } else { "acknowledged" };
    audit::record_detail(sql, now, TLS_ROTATED, None, None, Some(detail))
}
