//! `admin tls prepare`, `admin tls status`, `admin tls rotate`: replacing the office's
//! certificate while phones are in the field, without enrolling them again (see
//! `docs/tls-rotation.md`).
//!
//! The files are `http::tls`'s; which phones hold the next certificate is
//! `office::pins`'s. A running `serve` announces a prepared certificate at once (it reads the
//! next file on each sync) and presents the rotated one after its restart.

use std::io::Write;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use fieldcase_core::protocol::Fingerprint;
use fieldcase_server::clock::rfc3339;
use fieldcase_server::display::for_terminal_line;
use fieldcase_server::http::tls::{self, PREVIOUS_CERT_FILE, PREVIOUS_KEY_FILE, TlsIdentity};
use fieldcase_server::office::pins::{self, DevicePins};

use super::Office;

/// The `admin tls` subcommands.
#[derive(Subcommand, Debug)]
pub enum TlsCommand {
    /// Make the next certificate beside the current one and print its fingerprint. From now on
    /// every sync tells phones to accept it too (signed with the office's key).
    Prepare {
        /// Instead of a new certificate, make the previous one (kept by the last rotation) the
        /// next one again: the way back that strands no phone.
        #[arg(long)]
        from_previous: bool,
    },
    /// Show the current, next and previous certificates, and which active devices hold the
    /// next one.
    Status,
    /// Switch to the next certificate (the current pair is kept as the previous one); restart
    /// `serve` to use it. Refused while an active device has not acknowledged the next
    /// certificate, unless `--force`: such a phone then fails every sync with a certificate
    /// mismatch until its worker enters the new fingerprint.
    Rotate {
        /// Rotate even though some active devices do not hold the next certificate yet.
        #[arg(long)]
        force: bool,
    },
}

/// Runs one `admin tls` subcommand.
pub fn run(office: &Office, command: TlsCommand, out: &mut impl Write) -> Result<()> {
    match command {
        TlsCommand::Prepare { from_previous } => prepare(office, from_previous, out),
        TlsCommand::Status => status(office, out),
        TlsCommand::Rotate { force } => rotate(office, force, out),
    }
}

fn prepare(office: &Office, from_previous: bool, out: &mut impl Write) -> Result<()> {
    let next = if from_previous {
        tls::prepare_from_previous(&office.data)?
    } else {
        tls::prepare_next(&office.data)?
    }
    .fingerprint();
    office
        .db
        .write(|sql| pins::record_prepared(sql, &next, office.now))?;
    writeln!(out, "next certificate sha256 fingerprint: {next}")?;
    writeln!(
        out,
        "phones learn it at their next sync; `admin tls status` shows which hold it, then \
         `admin tls rotate` and restart serve"
    )?;
    Ok(())
}

fn acknowledgements(office: &Office, next: &Fingerprint) -> Result<Vec<DevicePins>> {
    Ok(office.db.read(|sql| pins::acknowledgements(sql, next))?)
}

fn status(office: &Office, out: &mut impl Write) -> Result<()> {
    let current = TlsIdentity::load(&office.data).context("TLS certificate")?;
    writeln!(out, "current certificate:  {}", current.fingerprint())?;
    let previous = office.data.join(PREVIOUS_CERT_FILE);
    if previous.exists() && office.data.join(PREVIOUS_KEY_FILE).exists() {
        let der = certificate_der(&previous)?;
        writeln!(out, "previous certificate: {}", Fingerprint::of_der(&der))?;
    }
    let Some(next) = TlsIdentity::load_next(&office.data)? else {
        writeln!(
            out,
            "next certificate:     none (admin tls prepare makes one)"
        )?;
        return Ok(());
    };
    let next = next.fingerprint();
    writeln!(out, "next certificate:     {next}")?;
    let devices = acknowledgements(office, &next)?;
    writeln!(
        out,
        "{:<36}  {:<12}  {:<20}  {:<20}  user",
        "device", "next pin", "acknowledged", "last sync"
    )?;
    let time = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), rfc3339);
    for d in &devices {
        let state = match (d.acknowledged, d.confirmed) {
            (true, _) => "held",
            (false, true) => "missing",
            (false, false) => "unconfirmed",
        };
        writeln!(
            out,
            "{:<36}  {:<12}  {:<20}  {:<20}  {}",
            d.device_id,
            state,
            time(d.pins_at.filter(|_| d.acknowledged)),
            time(d.last_sync_at),
            for_terminal_line(&d.user_name)
        )?;
    }
    let held = devices.iter().filter(|d| d.acknowledged).count();
    writeln!(
        out,
        "{held} of {} active devices hold the next certificate",
        devices.len()
    )?;
    Ok(())
}

/// The DER of the first certificate in a PEM file.
fn certificate_der(path: &std::path::Path) -> Result<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let cert = CertificateDer::from_pem_file(path)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(cert.as_ref().to_vec())
}

fn rotate(office: &Office, force: bool, out: &mut impl Write) -> Result<()> {
    let Some(next) = TlsIdentity::load_next(&office.data)? else {
        bail!(fieldcase_server::error::ServerError::NoNextCertificate);
    };
    let devices = acknowledgements(office, &next.fingerprint())?;
    let missing: Vec<&DevicePins> = devices.iter().filter(|d| !d.acknowledged).collect();
    if !missing.is_empty() && !force {
        let ids: Vec<String> = missing.iter().map(|d| d.device_id.to_string()).collect();
        bail!(
            "{} of {} active devices do not hold the next certificate yet ({}): wait until they \
             have synced (admin tls status), revoke the ones that are gone, or rotate with \
             --force and give their workers the new fingerprint",
            missing.len(),
            devices.len(),
            ids.join(", ")
        );
    }
    let rotated = tls::rotate(&office.data)?;
    office
        .db
        .write(|sql| pins::record_rotated(sql, !missing.is_empty(), office.now))?;
    writeln!(out, "current certificate:  {}", rotated.current)?;
    writeln!(
        out,
        "previous certificate: {} (kept as {PREVIOUS_CERT_FILE})",
        rotated.previous
    )?;
    if !missing.is_empty() {
        writeln!(
            out,
            "{} devices do not hold it: their workers must enter the new fingerprint",
            missing.len()
        )?;
    }
    writeln!(out, "restart serve to present the new certificate")?;
    Ok(())
}
