//! `admin team`: create teams, list them with their people, put people on a team and take them
//! off. A case manager or admin reads the cases of her teams only.

use std::io::Write;

use anyhow::Result;
use clap::Subcommand;
use fieldcase_server::display::for_terminal_line;
use fieldcase_server::office::{teams, users};

use super::Office;

/// `admin team ...`
#[derive(Subcommand, Debug)]
pub enum TeamCommand {
    /// Create a team; prints its id.
    Create {
        /// Its name (unique).
        name: String,
    },
    /// List teams with their members and how many cases each holds.
    List,
    /// Put a user on a team: she reads its cases from then on.
    Join {
        /// The team (name or id).
        team: String,
        /// The user (name or id).
        user: String,
    },
    /// Take a user off a team: she no longer reads its cases.
    Leave {
        /// The team (name or id).
        team: String,
        /// The user (name or id).
        user: String,
    },
}

/// Runs one `admin team` command.
pub fn run(office: &Office, command: TeamCommand, out: &mut impl Write) -> Result<()> {
    let (db, now) = (&office.db, office.now);
    match command {
        TeamCommand::Create { name } => {
            let id = db.write(|sql| teams::create_team(sql, &name, now))?;
            writeln!(out, "created team {id}")?;
        }
        TeamCommand::List => {
            for team in db.read(teams::list_teams)? {
                writeln!(
                    out,
                    "{}  {} ({} cases)",
                    team.id,
                    for_terminal_line(&team.name),
                    team.cases
                )?;
                for (_, name, role) in &team.members {
                    writeln!(out, "    {} ({role})", for_terminal_line(name))?;
                }
            }
        }
        TeamCommand::Join { team, user } => set_member(office, &team, &user, true, out)?,
        TeamCommand::Leave { team, user } => set_member(office, &team, &user, false, out)?,
    }
    Ok(())
}

fn set_member(
    office: &Office,
    team: &str,
    user: &str,
    join: bool,
    out: &mut impl Write,
) -> Result<()> {
    let now = office.now;
    office.db.write(|sql| {
        let team = teams::resolve_team(sql, team)?;
        let user = users::resolve_user(sql, user)?.0;
        teams::set_member(sql, team, user, join, now)
    })?;
    writeln!(out, "{}", if join { "joined" } else { "left" })?;
    Ok(())
}
