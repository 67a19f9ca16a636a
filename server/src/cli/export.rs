//! `admin export htcds`: the anonymised export of the cases registered in a period, in the
//! shape of HTCDS / CTDC, k-anonymous, written to a new file and audited; what was written,
//! suppressed and generalised printed.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use fieldcase_server::office::export;
use fieldcase_server::office::reports::Period;
use fieldcase_server::office::teams;
use fieldcase_server::storage::report_index::Teams;

use super::Office;

/// `admin export ...`
#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    /// One CSV row per case registered in the period, HTCDS names and values, no names,
    /// codes, ids, free text or dates; k-anonymous over gender, age band, citizenship,
    /// exploitation, year/quarter and country of recruitment.
    Htcds {
        /// First day of registration (YYYY-MM-DD).
        #[arg(long, value_parser = super::reports::parse_date)]
        from: time::Date,
        /// Last day of registration (YYYY-MM-DD), included.
        #[arg(long, value_parser = super::reports::parse_date)]
        to: time::Date,
        /// Every row kept shares its quasi-identifiers with at least k - 1 others (CTDC: 11).
        #[arg(long, default_value_t = export::DEFAULT_K)]
        k: usize,
        /// The file to write (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// One team (name or id); the whole office without it.
        #[arg(long)]
        team: Option<String>,
    },
}

/// Runs an export command.
pub fn run(office: &Office, command: ExportCommand, out: &mut impl Write) -> Result<()> {
    let ExportCommand::Htcds {
        from,
        to,
        k,
        out: file,
        team,
    } = command;
    let period = Period::new(from, to)?;
    let vault = office.vault()?;
    let existed = file.exists();
    let done = office.db.write(|sql| {
        let teams = match &team {
            Some(t) => Teams::Only(vec![teams::resolve_team(sql, t)?.to_string()]),
            None => Teams::All,
        };
        export::write(sql, &vault, &teams, period, k, &file, office.now)
    });
    let export = match done {
        Ok(e) => e,
        Err(e) => {
            // Written but not committed (the audit entry did not land): take it back. A file
            // that was there before is never touched.
            if !existed && file.exists() {
                let _ = std::fs::remove_file(&file);
            }
            return Err(e.into());
        }
    };
    out.write_all(export.summary().as_bytes())?;
    writeln!(out, "Written to {}", file.display())?;
    Ok(())
}
