//! `admin audit`: verify the hash chain, list recent entries.

use std::io::Write;

use anyhow::{Result, bail};
use clap::Subcommand;
use fieldcase_server::clock::rfc3339;
use fieldcase_server::office::audit::{self, ChainReport};

use super::Office;

/// `admin audit ...`
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Recompute the hash chain; exit non-zero and name the entry where it breaks.
    Verify,
    /// Show the most recent entries, oldest first.
    List {
        /// How many entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// Runs one `admin audit` command.
pub fn run(office: &Office, command: AuditCommand, out: &mut impl Write) -> Result<()> {
    match command {
        AuditCommand::Verify => match office.db.read(audit::verify_chain)? {
            ChainReport::Intact {
                entries,
                legacy,
                head,
            } => {
                writeln!(out, "audit chain ok: {entries} entries")?;
                if legacy > 0 {
                    writeln!(
                        out,
                        "({legacy} entries predate the chain and carry no hash)"
                    )?;
                }
                if let Some(head) = head {
                    writeln!(out, "head hash: {}", hex::encode(head))?;
                }
            }
            ChainReport::Broken { seq, problem } => {
                writeln!(out, "audit chain broken at entry {seq}: {problem}")?;
                out.flush()?;
                bail!("audit chain verification failed at entry {seq}");
            }
        },
        AuditCommand::List { limit } => {
            writeln!(
                out,
                "{:>6}  {:<20}  {:<24}  {:<36}  {:<36}  detail",
                "seq", "at", "action", "user", "device"
            )?;
            for e in office.db.read(|sql| audit::list(sql, limit))? {
                writeln!(
                    out,
                    "{:>6}  {:<20}  {:<24}  {:<36}  {:<36}  {}",
                    e.seq,
                    rfc3339(e.at),
                    e.action,
                    e.user_id.as_deref().unwrap_or("-"),
                    e.device_id.as_deref().unwrap_or("-"),
                    e.detail.as_deref().unwrap_or("-")
                )?;
            }
        }
    }
    Ok(())
}
