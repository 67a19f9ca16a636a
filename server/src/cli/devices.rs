//! `admin enroll`, `admin devices`, `admin revoke`, `admin deactivate`: a device's life from its
//! enrollment code to its revocation.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use fieldcase_server::clock::rfc3339;
use fieldcase_server::display::for_terminal_line;
use fieldcase_server::http::tls::TlsIdentity;
use fieldcase_server::office::devices::{self, DeviceStatus, RevokeOutcome};
use fieldcase_server::office::{enrollment, users};

use super::{Office, Settings};

/// Reads how long an enrollment code stays valid: `90s`, `15m`, `1h` (a bare number is seconds),
/// between 1 second and 24 hours.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| "expected a duration like 15m, 90s or 1h".to_owned())?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err("the unit is s, m or h".to_owned()),
    };
    if secs == 0 || secs > 24 * 3600 {
        return Err("the code must be valid for between 1 second and 24 hours".to_owned());
    }
    Ok(Duration::from_secs(secs))
}

/// `admin enroll USER`: issues a one-time code and prints what the phone needs to enroll.
pub fn enroll(
    office: &Office,
    settings: &Settings,
    user: &str,
    ttl: Duration,
    url: Option<String>,
    out: &mut impl Write,
) -> Result<()> {
    let ttl_secs = i64::try_from(ttl.as_secs()).context("ttl")?;
    let identity = TlsIdentity::load(&office.data).context("TLS certificate")?;
    let issued = office
        .db
        .write(|sql| enrollment::issue_enrollment_code(sql, user, ttl_secs, office.now))?;
    let given = url.or_else(|| settings.public_url.clone());
    // The listen address is what phones reach only when it names one address.
    let reachable = given.is_some() || !settings.listen.ip().is_unspecified();
    let url = given.unwrap_or_else(|| format!("https://{}", settings.listen));
    writeln!(out, "enrollment code: {}", issued.code)?;
    writeln!(out, "user id:         {}", issued.user_id)?;
    writeln!(
        out,
        "expires:         {} (one device, one use)",
        rfc3339(issued.expires_at)
    )?;
    writeln!(out, "server url:      {url}")?;
    writeln!(out, "fingerprint:     {}", identity.fingerprint())?;
    match enrollment::invite(&url, identity.fingerprint(), &issued.code).filter(|_| reachable) {
        Some(invite) => writeln!(out, "invite:          {invite}")?,
        None => writeln!(
            out,
            "invite:          none (no https://host[:port] the phone can reach; give --url)"
        )?,
    }
    if settings.listen.ip().is_unspecified() {
        writeln!(
            out,
            "note: the server listens on all addresses; give the device an address it can reach (--url)"
        )?;
    }
    Ok(())
}

/// `admin devices`: one line a device.
pub fn list(office: &Office, out: &mut impl Write) -> Result<()> {
    let devices = office.db.read(devices::list_devices)?;
    writeln!(
        out,
        "{:<36}  {:<20}  {:<20}  {:<20}  {:<8}  {:<19}  {:<28}  {:>6}  user",
        "device",
        "enrolled",
        "last sync",
        "lease expires",
        "state",
        "key fingerprint",
        "wiped",
        "purged"
    )?;
    let time = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), rfc3339);
    for d in devices {
        let state = match (d.status, d.user_active, d.confirmed_at) {
            (DeviceStatus::Active, true, None) => "waiting",
            (DeviceStatus::Active, true, Some(_)) => "active",
            (DeviceStatus::Active, false, _) => "inactive",
            (DeviceStatus::Revoked, _, _) => "revoked",
        };
        let wiped = match (d.wiped_at, &d.wipe_reason) {
            (Some(at), Some(reason)) => format!("{} ({reason})", rfc3339(at)),
            (Some(at), None) => rfc3339(at),
            (None, _) => "-".to_owned(),
        };
        writeln!(
            out,
            "{:<36}  {:<20}  {:<20}  {:<20}  {:<8}  {:<19}  {:<28}  {:>6}  {}",
            d.device_id,
            rfc3339(d.enrolled_at),
            time(d.last_sync_at),
            time(d.lease_expires_at),
            state,
            d.fingerprint,
            wiped,
            d.purge_receipts,
            for_terminal_line(&d.user_name)
        )?;
    }
    Ok(())
}

/// `admin confirm DEVICE --fingerprint F`: lets a newly enrolled phone sync once the key
/// fingerprint it shows is the one the office registered.
pub fn confirm(
    office: &Office,
    device: &str,
    fingerprint: &str,
    out: &mut impl Write,
) -> Result<()> {
    let device_id = uuid::Uuid::try_parse(device.trim()).context("device id")?;
    office
        .db
        .write(|sql| devices::confirm_device(sql, &device_id, fingerprint, office.now))?;
    writeln!(out, "confirmed device {device_id}")?;
    Ok(())
}

/// `admin revoke DEVICE`.
pub fn revoke(office: &Office, device: &str, out: &mut impl Write) -> Result<()> {
    let device_id = uuid::Uuid::try_parse(device.trim()).context("device id")?;
    match office
        .db
        .write(|sql| devices::revoke_device(sql, &device_id, office.now))?
    {
        RevokeOutcome::Revoked { .. } => {
            writeln!(out, "revoked device {device_id}")?;
        }
        RevokeOutcome::AlreadyRevoked { revoked_at } => {
            let when = revoked_at.map_or_else(|| "earlier".to_owned(), rfc3339);
            writeln!(out, "device {device_id} was already revoked ({when})")?;
        }
    }
    Ok(())
}

/// `admin deactivate USER`: the user and every device of theirs.
pub fn deactivate(office: &Office, user: &str, out: &mut impl Write) -> Result<()> {
    let done = office
        .db
        .write(|sql| users::deactivate_user(sql, user, office.now))?;
    if done.was_inactive && done.revoked_devices.is_empty() {
        writeln!(out, "user {} was already deactivated", done.user_id)?;
    } else {
        writeln!(
            out,
            "deactivated user {}; revoked {} device(s)",
            done.user_id,
            done.revoked_devices.len()
        )?;
        for d in &done.revoked_devices {
            writeln!(out, "revoked device {d}")?;
        }
    }
    Ok(())
}
