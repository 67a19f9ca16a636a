//! `admin quarantine`: uploads of revoked devices, read, released into their case or discarded.

use std::io::Write;

use anyhow::Result;
use clap::Subcommand;
use fieldcase_server::clock::rfc3339;
use fieldcase_server::display::{for_terminal, for_terminal_line};
use fieldcase_server::office::{access, quarantine};

use super::Office;

/// `admin quarantine ...`
#[derive(Subcommand, Debug)]
pub enum QuarantineCommand {
    /// List quarantined uploads.
    List,
    /// Show what an upload would add to its case.
    Show {
        /// The quarantine id.
        id: uuid::Uuid,
    },
    /// Merge an upload into its case (other devices get it at their next sync).
    Release {
        /// The quarantine id.
        id: uuid::Uuid,
    },
    /// Discard an upload; the case stays as it is.
    Discard {
        /// The quarantine id.
        id: uuid::Uuid,
    },
}

/// Runs one `admin quarantine` command.
pub fn run(office: &Office, command: QuarantineCommand, out: &mut impl Write) -> Result<()> {
    let (db, now) = (&office.db, office.now);
    let vault = &*office.vault()?;
    match command {
        QuarantineCommand::List => {
            writeln!(
                out,
                "{:<36}  {:<20}  {:<36}  {:<36}  decision",
                "id", "received", "device", "case"
            )?;
            for q in db.read(quarantine::list)? {
                writeln!(
                    out,
                    "{:<36}  {:<20}  {:<36}  {:<36}  {}",
                    q.id,
                    rfc3339(q.received_at),
                    q.device,
                    q.case,
                    q.decision.as_deref().unwrap_or("waiting")
                )?;
            }
        }
        QuarantineCommand::Show { id } => {
            let preview = db.write(|sql| {
                let preview = quarantine::preview(sql, vault, id)?;
                access::record_command_line_read(sql, preview.entry.case, now)?;
                Ok::<_, fieldcase_server::error::ServerError>(preview)
            })?;
            writeln!(
                out,
                "case {} from device {} at {}",
                preview.entry.case,
                preview.entry.device,
                rfc3339(preview.entry.received_at)
            )?;
            for f in &preview.fields {
                writeln!(
                    out,
                    "--- {}: {} -> {}",
                    f.field,
                    for_terminal_line(&f.before),
                    for_terminal_line(&f.after)
                )?;
            }
            for (what, notes) in [
                ("note", &preview.notes),
                ("deleted note", &preview.deleted_notes),
            ] {
                for note in notes {
                    writeln!(
                        out,
                        "--- {what} {} ({}) by user {}",
                        note.id, note.kind, note.author.user
                    )?;
                    writeln!(out, "{}", for_terminal(&note.body))?;
                }
            }
            for (what, tasks) in [
                ("task", &preview.tasks),
                ("deleted task", &preview.deleted_tasks),
            ] {
                for task in tasks {
                    writeln!(
                        out,
                        "--- {what} {} at {}: {} ({}, {})",
                        task.id,
                        rfc3339(task.scheduled_at.unix_timestamp()),
                        for_terminal_line(&task.purpose),
                        for_terminal_line(&task.office_name),
                        task.status
                    )?;
                }
            }
        }
        QuarantineCommand::Release { id } => {
            db.write(|sql| quarantine::release(sql, vault, id, now))?
                .keep(vault);
            writeln!(out, "released into the case")?;
        }
        QuarantineCommand::Discard { id } => {
            db.write(|sql| quarantine::discard(sql, vault, id, now))?
                .keep(vault);
            writeln!(out, "discarded")?;
        }
    }
    Ok(())
}
