//! `admin case`: open a case, assign and unassign workers, plan tasks, close it, list cases,
//! and the conflict inbox (list, resolve).

use std::io::Write;

use anyhow::{Context, Result};
use clap::Subcommand;
use fieldcase_core::ids::UserId;
use fieldcase_core::model::{CaseStatus, NewCase, NewTask};
use fieldcase_server::clock::rfc3339;
use fieldcase_server::display::for_terminal_line;
use fieldcase_server::error::ServerError;
use fieldcase_server::office::{access, cases, conflicts, teams, users};

use super::Office;

/// `admin case ...`
#[derive(Subcommand, Debug)]
pub enum CaseCommand {
    /// Open a case assigned to one or more workers; prints its id.
    Create {
        /// The client's code (never the name).
        #[arg(long)]
        client_code: String,
        /// A worker (user name) to assign; repeat for several.
        #[arg(long = "assign", value_name = "USER", required = true)]
        assign: Vec<String>,
        /// Consent as recorded at intake: pending, given or withdrawn.
        #[arg(long, default_value = "pending")]
        consent: String,
        /// The team whose people follow it (name or id); the default team when not given.
        #[arg(long)]
        team: Option<String>,
    },
    /// Move a case to another team: its people read it from then on, the old team's do not.
    Move {
        /// The case id.
        case: String,
        /// The team (name or id).
        #[arg(long)]
        team: String,
    },
    /// Assign a worker to a case.
    Assign {
        /// The case id.
        case: String,
        /// The worker's user name.
        user: String,
    },
    /// Remove a worker from a case.
    Unassign {
        /// The case id.
        case: String,
        /// The worker's user name.
        user: String,
    },
    /// Plan an accompaniment task in a case.
    AddTask {
        /// The case id.
        case: String,
        /// Why the client goes.
        #[arg(long)]
        purpose: String,
        /// police, social_welfare_centre, court, prosecutor, registry_office, health_centre,
        /// employment_service, embassy_or_consulate, school or other.
        #[arg(long)]
        office_kind: String,
        /// The office's name.
        #[arg(long)]
        office_name: String,
        /// The office's address.
        #[arg(long, default_value = "")]
        address: String,
        /// When, RFC 3339 with offset (2026-11-24T10:00:00+01:00).
        #[arg(long)]
        at: String,
        /// IANA time zone it is planned in.
        #[arg(long, default_value = "Europe/Belgrade")]
        time_zone: String,
        /// A worker (user name) who accompanies; repeat for several.
        #[arg(long = "assignee", value_name = "USER")]
        assignees: Vec<String>,
        /// A document to bring; repeat for several.
        #[arg(long = "bring", value_name = "ITEM")]
        checklist: Vec<String>,
    },
    /// List the conflict inbox: sensitive fields (consent, risk level, legal status, a task's
    /// outcome) that hold concurrent values, each with who wrote it and when.
    Conflicts,
    /// Settle a conflict in the inbox: keep one of the values, or write a new one.
    Resolve {
        /// The case id.
        case: String,
        /// The field: consent, risk_level or legal_status (of the case), or outcome (of a task,
        /// with --task).
        #[arg(long)]
        field: String,
        /// The task id, for a task's outcome.
        #[arg(long)]
        task: Option<String>,
        /// The value to keep (one of those shown by `conflicts`, or a new one).
        #[arg(long)]
        value: String,
    },
    /// Close a case; devices purge it once the retention period has passed.
    Close {
        /// The case id.
        case: String,
    },
    /// List case ids, oldest first.
    List,
}

/// Runs one `admin case` command.
pub fn run(office: &Office, command: CaseCommand, out: &mut impl Write) -> Result<()> {
    let (db, now) = (&office.db, office.now);
    let vault = &*office.vault()?;
    let assigning = matches!(command, CaseCommand::Assign { .. });
    match command {
        CaseCommand::Create {
            client_code,
            assign,
            consent,
            team,
        } => {
            let new = NewCase {
                client_code,
                consent: consent.parse().context("consent")?,
                assigned_workers: office.user_ids(&assign)?,
            };
            let (id, _) = db
                .write(|sql| {
                    let team = match &team {
                        Some(team) => teams::resolve_team(sql, team)?,
                        None => teams::DEFAULT_TEAM,
                    };
                    cases::create_case_in_team(sql, vault, team, &new, None, now)
                })?
                .keep(vault);
            writeln!(out, "created case {id}")?;
        }
        CaseCommand::Move { case, team } => {
            let case = case.parse().context("case id")?;
            db.write(|sql| {
                let team = teams::resolve_team(sql, &team)?;
                teams::move_case(sql, case, team, None, now)
            })?;
            writeln!(out, "moved")?;
        }
        CaseCommand::Assign { case, user } | CaseCommand::Unassign { case, user } => {
            let user = UserId::from_uuid(
                db.read(|sql| users::user_id_by_name(sql, &user))
                    .context("unknown user name")?,
            );
            let case = case.parse().context("case id")?;
            db.write(|sql| cases::set_assigned(sql, vault, case, user, assigning, now))?
                .keep(vault);
            writeln!(out, "{}", if assigning { "assigned" } else { "unassigned" })?;
        }
        CaseCommand::AddTask {
            case,
            purpose,
            office_kind,
            office_name,
            address,
            at,
            time_zone,
            assignees,
            checklist,
        } => {
            let task = NewTask {
                purpose,
                office_kind: office_kind.parse().context("office kind")?,
                office_name,
                office_address: address,
                scheduled_at: time::OffsetDateTime::parse(
                    &at,
                    &time::format_description::well_known::Rfc3339,
                )
                .context("--at must be RFC 3339 with an offset")?,
                time_zone,
                assignees: office.user_ids(&assignees)?,
                checklist,
            };
            let case = case.parse().context("case id")?;
            let id = db
                .write(|sql| cases::add_task(sql, vault, case, &task, now))?
                .keep(vault);
            writeln!(out, "added task {id}")?;
        }
        CaseCommand::Close { case } => {
            let case = case.parse().context("case id")?;
            db.write(|sql| cases::set_status(sql, vault, case, CaseStatus::Closed, now))?
                .keep(vault);
            writeln!(out, "closed")?;
        }
        CaseCommand::List => {
            for id in db.read(cases::list_case_ids)? {
                writeln!(out, "{id}")?;
            }
        }
        CaseCommand::Conflicts => {
            let inbox = db.write(|sql| {
                let ids = cases::list_case_ids(sql)?;
                let inbox = conflicts::inbox(sql, vault, &ids)?;
                for case in &inbox {
                    access::record_command_line_read(sql, case.case, now)?;
                }
                Ok::<_, ServerError>(inbox)
            })?;
            if inbox.is_empty() {
                writeln!(out, "no conflicts wait")?;
            }
            for case in inbox {
                writeln!(
                    out,
                    "case {} ({})",
                    case.case,
                    for_terminal_line(&case.client_code)
                )?;
                for c in case.conflicts {
                    match c.task {
                        Some(task) => writeln!(out, "  task {task} {}:", c.field)?,
                        None => writeln!(out, "  {}:", c.field)?,
                    }
                    for v in c.values {
                        let who = v.author.map_or_else(
                            || "unknown author".to_owned(),
                            |a| format!("user {} device {}", a.user, a.device),
                        );
                        let when =
                            v.at.map_or_else(|| "-".to_owned(), |t| rfc3339(t.unix_timestamp()));
                        writeln!(
                            out,
                            "    {:<24}  {when}  {who}",
                            for_terminal_line(&v.value)
                        )?;
                    }
                }
            }
        }
        CaseCommand::Resolve {
            case,
            field,
            task,
            value,
        } => {
            let decision = conflicts::Resolution {
                case: case.parse().context("case id")?,
                task: task.map(|t| t.parse()).transpose().context("task id")?,
                field,
                value,
            };
            db.write(|sql| conflicts::resolve(sql, vault, &decision, None, now))?
                .keep(vault);
            writeln!(out, "resolved")?;
        }
    }
    Ok(())
}
