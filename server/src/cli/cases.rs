//! `admin case`: open a case, assign and unassign workers, plan tasks, close it, list cases,
//! and the conflict inbox (list, resolve).

use std::io::Write;

use anyhow::{Context, Result};
use clap::Subcommand;
use fieldcase_core::ids::UserId;
use fieldcase_core::model::{CaseStatus, GoalUpdate, NewCase, NewGoal, NewReview, NewTask};
use fieldcase_server::clock::rfc3339;
use fieldcase_server::display::for_terminal_line;
use fieldcase_server::error::ServerError;
use fieldcase_server::office::plan::{self, PlanEdit};
use fieldcase_server::office::{access, cases, conflicts, retention, teams, users};

fn date(text: &str) -> Result<time::Date> {
    time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .context("a date is YYYY-MM-DD")
}

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
        /// The goal id, for a recovery-plan goal's status.
        #[arg(long)]
        goal: Option<String>,
        /// The value to keep (one of those shown by `conflicts`, or a new one).
        #[arg(long)]
        value: String,
    },
    /// Close a case with a reason (goals_achieved, client_request, lost_contact, referred,
    /// relocated, deceased or other), also recorded as its HTCDS status; devices purge it once
    /// their retention period has passed, the office erases its content after its own.
    Close {
        /// The case id.
        case: String,
        /// Why it is closed.
        #[arg(long, default_value = "other")]
        reason: String,
    },
    /// Put a case on hold (the client cannot be reached, a decision is awaited).
    Hold {
        /// The case id.
        case: String,
    },
    /// Reopen a closed or held case.
    Reopen {
        /// The case id.
        case: String,
    },
    /// Set a goal of the case's recovery plan; prints its id.
    AddGoal {
        /// The case id.
        case: String,
        /// The area of help (an assistance tag: sos, psychological, legal, medical,
        /// reintegration, vocational_training, job_search, day_centre, administrative).
        #[arg(long)]
        area: String,
        /// What the client wants to reach.
        #[arg(long)]
        description: String,
        /// When it should be reached, YYYY-MM-DD.
        #[arg(long)]
        target: Option<String>,
    },
    /// Change a goal's status: planned, in_progress, achieved or dropped.
    GoalStatus {
        /// The case id.
        case: String,
        /// The goal id.
        goal: String,
        /// The new status.
        status: String,
    },
    /// Record a review of the case's recovery plan.
    Review {
        /// The case id.
        case: String,
        /// The day of the review, YYYY-MM-DD.
        #[arg(long)]
        on: String,
        /// What was found and decided.
        #[arg(long)]
        summary: String,
    },
    /// List case ids, oldest first.
    List,
    /// Erase a case's content at the office now because the client withdrew her consent
    /// (notes, plan, profile, tasks; anonymised statistics and an audit record stay). Phones
    /// purge it at their next sync. Cannot be undone.
    WithdrawConsent {
        /// The case id.
        case: String,
        /// Confirms the erasure.
        #[arg(long, required = true)]
        yes: bool,
    },
    /// Erase the content of every case closed for longer than the office's retention period
    /// (`office_retention_days`; `serve` does this every hour).
    EraseExpired,
}

/// Runs one `admin case` command.
pub fn run(office: &Office, command: CaseCommand, out: &mut impl Write) -> Result<()> {
    let (db, now) = (&office.db, office.now);
    let vault = &*office.vault()?;
    let assigning = matches!(command, CaseCommand::Assign { .. });
    let holding = matches!(command, CaseCommand::Hold { .. });
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
                teams::move_case(sql, vault, case, team, None, now)
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
        CaseCommand::Close { case, reason } => {
            let case = case.parse().context("case id")?;
            let reason = reason.parse().context("reason")?;
            db.write(|sql| {
                plan::set_lifecycle(
                    sql,
                    vault,
                    case,
                    CaseStatus::Closed,
                    Some(reason),
                    None,
                    now,
                )
            })?
            .keep(vault);
            writeln!(out, "closed")?;
        }
        CaseCommand::Hold { case } | CaseCommand::Reopen { case } => {
            let case = case.parse().context("case id")?;
            let status = if holding {
                CaseStatus::OnHold
            } else {
                CaseStatus::Open
            };
            db.write(|sql| plan::set_lifecycle(sql, vault, case, status, None, None, now))?
                .keep(vault);
            writeln!(out, "{}", if holding { "on hold" } else { "reopened" })?;
        }
        CaseCommand::AddGoal {
            case,
            area,
            description,
            target,
        } => {
            let case = case.parse().context("case id")?;
            let goal = NewGoal {
                area: area.parse().context("area")?,
                description,
                target_date: target.map(|t| date(&t)).transpose()?,
            };
            db.write(|sql| plan::edit(sql, vault, case, &PlanEdit::AddGoal(goal), None, now))?
                .keep(vault);
            writeln!(out, "goal set")?;
        }
        CaseCommand::GoalStatus { case, goal, status } => {
            let case = case.parse().context("case id")?;
            let update = GoalUpdate {
                status: Some(status.parse().context("status")?),
                ..GoalUpdate::default()
            };
            let edit = PlanEdit::UpdateGoal(goal.parse().context("goal id")?, update);
            db.write(|sql| plan::edit(sql, vault, case, &edit, None, now))?
                .keep(vault);
            writeln!(out, "goal changed")?;
        }
        CaseCommand::Review { case, on, summary } => {
            let case = case.parse().context("case id")?;
            let review = NewReview {
                reviewed_on: date(&on)?,
                summary,
                reviewer: None,
            };
            let edit = PlanEdit::AddReview(review);
            db.write(|sql| plan::edit(sql, vault, case, &edit, None, now))?
                .keep(vault);
            writeln!(out, "reviewed")?;
        }
        CaseCommand::WithdrawConsent { case, yes } => {
            if !yes {
                anyhow::bail!("--yes is needed to erase the case");
            }
            let case = case.parse().context("case id")?;
            db.write(|sql| retention::withdraw_consent(sql, vault, case, None, now))?;
            writeln!(out, "erased")?;
        }
        CaseCommand::EraseExpired => {
            let keep = i64::try_from(office.limits.office_retention.as_secs()).unwrap_or(i64::MAX);
            let erased = db.write(|sql| retention::erase_expired(sql, vault, keep, now))?;
            writeln!(out, "erased {} case(s)", erased.len())?;
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
                    match (c.task, c.goal) {
                        (Some(task), _) => writeln!(out, "  task {task} {}:", c.field)?,
                        (None, Some(goal)) => writeln!(out, "  goal {goal} {}:", c.field)?,
                        (None, None) => writeln!(out, "  {}:", c.field)?,
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
            goal,
            value,
        } => {
            let decision = conflicts::Resolution {
                case: case.parse().context("case id")?,
                task: task.map(|t| t.parse()).transpose().context("task id")?,
                goal: goal.map(|g| g.parse()).transpose().context("goal id")?,
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
