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
    /// Recompute the keyed hash chain; exit non-zero and name the entry where it breaks. With
    /// --head, also check that the log still holds a head taken earlier.
    Verify {
        /// A head printed earlier by `admin audit head` (64 hex digits).
        #[arg(long, value_parser = parse_head)]
        head: Option<[u8; 32]>,
    },
    /// Print the head of the chain (the last entry's hash and number), to write down or send
    /// elsewhere and check the log against later.
    Head,
    /// Show the most recent entries, oldest first.
    List {
        /// How many entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// Reads a head: 64 hex digits.
fn parse_head(text: &str) -> Result<[u8; 32], String> {
    let mut head = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut head)
        .map_err(|_| "a head is 64 hex digits (as `admin audit head` prints it)".to_owned())?;
    Ok(head)
}

/// The chain verified, or the command's failure naming where it breaks.
fn intact(office: &Office, out: &mut impl Write) -> Result<(u64, u64, u64, Option<[u8; 32]>)> {
    match office.db.read(audit::verify_chain)? {
        ChainReport::Intact {
            entries,
            legacy,
            unkeyed,
            head,
        } => Ok((entries, legacy, unkeyed, head)),
        ChainReport::Broken { seq, problem } => {
            writeln!(out, "audit chain broken at entry {seq}: {problem}")?;
            out.flush()?;
            bail!("audit chain verification failed at entry {seq}");
        }
    }
}

/// Runs one `admin audit` command.
pub fn run(office: &Office, command: AuditCommand, out: &mut impl Write) -> Result<()> {
    match command {
        AuditCommand::Verify { head: earlier } => {
            let (entries, legacy, unkeyed, head) = intact(office, out)?;
            writeln!(out, "audit chain ok: {entries} entries")?;
            if legacy > 0 {
                writeln!(
                    out,
                    "({legacy} entries predate the chain and carry no hash)"
                )?;
            }
            if unkeyed > 0 {
                writeln!(
                    out,
                    "({unkeyed} entries predate the office's audit key and are hashed without it)"
                )?;
            }
            if let Some(head) = head {
                writeln!(out, "head hash: {}", hex::encode(head))?;
            }
            if let Some(earlier) = earlier {
                match office
                    .db
                    .read(|sql| audit::entry_with_hash(sql, &earlier))?
                {
                    Some(seq) => writeln!(
                        out,
                        "the log still holds head {} (entry {seq})",
                        hex::encode(earlier)
                    )?,
                    None => {
                        writeln!(
                            out,
                            "the log no longer holds head {}: entries up to it were rewritten or removed",
                            hex::encode(earlier)
                        )?;
                        out.flush()?;
                        bail!("the log does not hold the head given");
                    }
                }
            }
        }
        AuditCommand::Head => {
            let (entries, _, _, head) = intact(office, out)?;
            match head {
                Some(head) => writeln!(out, "{} {entries}", hex::encode(head))?,
                None => bail!("the audit log holds no chained entry yet"),
            }
        }
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
