//! The individual recovery plan and the client profile in a case document.
//!
//! Layout (root map, beside the fields of [`super`]):
//!
//! ```text
//! goals:    { goal_id: { area, description, status, target_date, created_user,
//!                        created_device, created_at } }
//! services: { service_id: { area, description, given_on, goals: { goal_id: true },
//!                           tasks: { task_id: true }, notes: { note_id: true },
//!                           recorded_user, recorded_device, recorded_at } }
//! reviews:  { review_id: { reviewed_on, reviewer, summary, recorded_at } }
//! profile.gender, profile.birth_year (int), profile.nationality, profile.labour_industry,
//! profile.recruitment_method, profile.recruitment_country, profile.htcds_status,
//! profile.closure_reason: str                         each absent when not recorded
//! profile.exploitation.VALUE, profile.control.VALUE: true    the two sets, a key a member
//! ```
//!
//! Goals, services and reviews are maps keyed by random ids, like notes and tasks, so entries
//! added on two phones offline both survive. Documents written before the plan existed lack the
//! three maps; the first replica to add an entry makes the map, and if two replicas made it
//! concurrently automerge keeps both under the same key: every reader takes the entries of all
//! of them, and an edit finds its entry in whichever holds it. The profile's fields are keys of
//! the root itself (sets too, a key for each member), so no concurrent creation can hide one.
//!
//! Reading is lenient: an entry that does not read as a goal, service or review of this layout
//! (a broken or newer peer wrote it), or whose times lie outside the years 1900 to 2199, is left
//! out rather than making the whole case unreadable; likewise a profile value that does not
//! parse reads as not recorded.

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, ScalarValueRef, Value, ValueRef};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::CaseDoc;
use super::read::{Fields, child, format_date, format_time, key_set, parse_date};
use crate::error::{CoreError, Result};
use crate::ids::{GoalId, NoteId, ReviewId, ServiceId, TaskId};
use crate::model::{
    Author, ClientProfile, ExploitationType, Goal, GoalUpdate, MeansOfControl, NewGoal, NewReview,
    NewService, Plan, PlanReview, Service, date_in_range, time_in_range,
};

/// Root keys of the plan's maps.
pub(crate) const PLAN_MAPS: [&str; 3] = ["goals", "services", "reviews"];
const EXPLOITATION_PREFIX: &str = "profile.exploitation.";
const CONTROL_PREFIX: &str = "profile.control.";

fn am(_: automerge::AutomergeError) -> CoreError {
    CoreError::Document("edit failed")
}

/// Every map the root holds under `key`, concurrent ones included.
fn root_maps(doc: &AutoCommit, key: &str) -> Vec<ObjId> {
    doc.get_all(&automerge::ROOT, key)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(v, id)| matches!(v, Value::Object(ObjType::Map)).then_some(id))
        .collect()
}

/// The map the root holds under `key` (automerge's winner), made if there is none.
fn root_map(doc: &mut AutoCommit, key: &str) -> Result<ObjId> {
    match child(doc, &automerge::ROOT, key, ObjType::Map) {
        Some(id) => Ok(id),
        None => doc
            .put_object(&automerge::ROOT, key, ObjType::Map)
            .map_err(am),
    }
}

/// One entry of the plan's maps, found in any of the concurrent maps.
fn entry(doc: &AutoCommit, key: &str, id: &str) -> Option<ObjId> {
    root_maps(doc, key)
        .iter()
        .find_map(|m| child(doc, m, id, ObjType::Map))
}

/// Every entry of the plan's map `key`, across concurrent maps, by id.
fn entries(doc: &AutoCommit, key: &str) -> BTreeMap<String, ObjId> {
    let mut out = BTreeMap::new();
    for map in root_maps(doc, key) {
        for (k, obj) in Fields::of(doc, &map).children(ObjType::Map) {
            out.entry(k.to_owned()).or_insert_with(|| obj.clone());
        }
    }
    out
}

fn author(f: &Fields<'_>, user: &str, device: &str) -> Option<Author> {
    Some(Author {
        user: f.parse(user).ok()?,
        device: f.parse(device).ok()?,
    })
}

/// A date of an entry, if it parses and lies in the range a record may hold.
fn date_field(f: &Fields<'_>, key: &str) -> Option<Date> {
    let d = parse_date(&f.str(key)?).ok()?;
    date_in_range("a date of the plan", d).ok()?;
    Some(d)
}

/// A time of an entry, if it parses and lies in the range a record may hold.
fn time_field(f: &Fields<'_>, key: &str) -> Option<OffsetDateTime> {
    let t = f.time(key).ok()?;
    time_in_range("a time of the plan", t).ok()?;
    Some(t)
}

fn read_goal(doc: &AutoCommit, id: GoalId, obj: &ObjId) -> Option<Goal> {
    let f = Fields::of(doc, obj);
    let target_date = match f.str("target_date") {
        Some(_) => Some(date_field(&f, "target_date")?),
        None => None,
    };
    Some(Goal {
        id,
        area: f.parse("area").ok()?,
        description: f.required_str("description").ok()?,
        status: f.parse("status").ok()?,
        target_date,
        created_by: author(&f, "created_user", "created_device")?,
        created_at: time_field(&f, "created_at")?,
    })
}

fn read_service(doc: &AutoCommit, id: ServiceId, obj: &ObjId) -> Option<Service> {
    let f = Fields::of(doc, obj);
    Some(Service {
        id,
        area: f.parse("area").ok()?,
        description: f.required_str("description").ok()?,
        given_on: date_field(&f, "given_on")?,
        goals: key_set(doc, f.child("goals", ObjType::Map)),
        tasks: key_set(doc, f.child("tasks", ObjType::Map)),
        notes: key_set(doc, f.child("notes", ObjType::Map)),
        recorded_by: author(&f, "recorded_user", "recorded_device")?,
        recorded_at: time_field(&f, "recorded_at")?,
    })
}

fn read_review(doc: &AutoCommit, id: ReviewId, obj: &ObjId) -> Option<PlanReview> {
    let f = Fields::of(doc, obj);
    Some(PlanReview {
        id,
        reviewed_on: date_field(&f, "reviewed_on")?,
        reviewer: f.parse("reviewer").ok()?,
        summary: f.required_str("summary").ok()?,
        recorded_at: time_field(&f, "recorded_at")?,
    })
}

/// One change of a case's plan, profile or life (opened, assigned, status), for the history
/// the office shows: what was done, by whom, when. Notes and tasks have the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When (the author's clock).
    #[serde(with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
    /// Who, if the writer registered (every fieldcase replica does).
    pub author: Option<Author>,
    /// What was done: `goal.add`, `goal.update`, `service.add`, `review.add`,
    /// `profile.update`, `case.create`, `case.status`, `case.assign`, `case.update`.
    pub action: String,
    /// The goal concerned, for a goal's change.
    pub goal: Option<GoalId>,
    /// The goal's status it set, for a change of a goal's status.
    pub status: Option<crate::model::GoalStatus>,
    /// The person the change was made for, as its message names her (`by=USER`): the office
    /// writes every change with its own author, and names the case manager who acted. A phone
    /// could write such a word too, so it counts only on a change whose author is the office.
    pub by: Option<crate::ids::UserId>,
}

/// Actions the history lists.
const HISTORY_ACTIONS: &[&str] = &[
    "case.create",
    "case.status",
    "case.assign",
    "case.update",
    "goal.add",
    "goal.update",
    "service.add",
    "review.add",
    "profile.update",
];

fn put_str(d: &mut AutoCommit, obj: &ObjId, key: &str, value: &str) -> Result<()> {
    d.put(obj, key, value).map_err(am)
}

fn put_links<I: ToString>(d: &mut AutoCommit, obj: &ObjId, key: &str, ids: &[I]) -> Result<()> {
    let set = d.put_object(obj, key, ObjType::Map).map_err(am)?;
    for id in ids {
        d.put(&set, id.to_string(), true).map_err(am)?;
    }
    Ok(())
}

/// Writes a profile key when its value changed: `None` deletes it.
fn put_profile(
    d: &mut AutoCommit,
    key: &str,
    now: Option<String>,
    new: Option<String>,
) -> Result<()> {
    if now == new {
        return Ok(());
    }
    match new {
        Some(v) => d.put(&automerge::ROOT, key, v).map_err(am),
        None => d.delete(&automerge::ROOT, key).map_err(am),
    }
}

impl CaseDoc {
    /// The recovery plan as it stands.
    pub fn plan(&self) -> Result<Plan> {
        let doc = self.inner();
        let mut goals: Vec<Goal> = entries(doc, "goals")
            .iter()
            .filter_map(|(k, obj)| read_goal(doc, k.parse().ok()?, obj))
            .collect();
        goals.sort_by_key(|g| (g.created_at, g.id));
        let mut services: Vec<Service> = entries(doc, "services")
            .iter()
            .filter_map(|(k, obj)| read_service(doc, k.parse().ok()?, obj))
            .collect();
        services.sort_by_key(|s| (s.given_on, s.recorded_at, s.id));
        let mut reviews: Vec<PlanReview> = entries(doc, "reviews")
            .iter()
            .filter_map(|(k, obj)| read_review(doc, k.parse().ok()?, obj))
            .collect();
        reviews.sort_by_key(|r| (r.reviewed_on, r.recorded_at, r.id));
        Ok(Plan {
            goals,
            services,
            reviews,
        })
    }

    /// One goal as it stands.
    pub fn goal(&self, id: GoalId) -> Result<Goal> {
        let obj = self.goal_obj(id)?;
        read_goal(self.inner(), id, &obj).ok_or(CoreError::GoalNotFound)
    }

    pub(crate) fn goal_obj(&self, id: GoalId) -> Result<ObjId> {
        entry(self.inner(), "goals", &id.to_string()).ok_or(CoreError::GoalNotFound)
    }

    /// The goals' objects, by id (for the conflict check).
    pub(crate) fn goal_objs(&self) -> Vec<(GoalId, ObjId)> {
        entries(self.inner(), "goals")
            .into_iter()
            .filter_map(|(k, obj)| Some((k.parse().ok()?, obj)))
            .collect()
    }

    /// The client profile as it stands.
    pub fn profile(&self) -> ClientProfile {
        read_profile(self.inner())
    }

    /// Sets a goal of the plan; returns its id. It starts as planned.
    pub fn add_goal(
        &mut self,
        author: Author,
        new: &NewGoal,
        now: OffsetDateTime,
    ) -> Result<GoalId> {
        new.validate()?;
        let id = GoalId::new();
        let target = new.target_date.map(format_date).transpose()?;
        self.transact(author, now, "goal.add", |d| {
            let goals = root_map(d, "goals")?;
            let goal = d
                .put_object(&goals, id.to_string(), ObjType::Map)
                .map_err(am)?;
            put_str(d, &goal, "area", new.area.as_str())?;
            put_str(d, &goal, "description", &new.description)?;
            put_str(
                d,
                &goal,
                "status",
                crate::model::GoalStatus::Planned.as_str(),
            )?;
            if let Some(t) = &target {
                put_str(d, &goal, "target_date", t)?;
            }
            put_str(d, &goal, "created_user", &author.user.to_string())?;
            put_str(d, &goal, "created_device", &author.device.to_string())?;
            put_str(d, &goal, "created_at", &format_time(now)?)
        })?;
        Ok(id)
    }

    /// Changes some fields of a goal. Writing a field supersedes every concurrent value this
    /// replica has seen (it settles a conflict on it).
    pub fn update_goal(
        &mut self,
        author: Author,
        goal: GoalId,
        update: &GoalUpdate,
        now: OffsetDateTime,
    ) -> Result<()> {
        update.validate()?;
        let obj = self.goal_obj(goal)?;
        if update.is_empty() {
            return Ok(());
        }
        let what = match update.status {
            Some(status) => format!("goal.update {goal} {status}"),
            None => format!("goal.update {goal}"),
        };
        let target = update.target_date.map(format_date).transpose()?;
        self.transact(author, now, &what, |d| {
            if let Some(area) = update.area {
                put_str(d, &obj, "area", area.as_str())?;
            }
            if let Some(description) = &update.description {
                put_str(d, &obj, "description", description)?;
            }
            if let Some(status) = update.status {
                put_str(d, &obj, "status", status.as_str())?;
            }
            if let Some(t) = &target {
                put_str(d, &obj, "target_date", t)?;
            }
            Ok(())
        })
    }

    /// Records a service given to the client; returns its id. Every goal, task and note it
    /// links to must be in the case.
    pub fn add_service(
        &mut self,
        author: Author,
        new: &NewService,
        now: OffsetDateTime,
    ) -> Result<ServiceId> {
        new.validate()?;
        for g in &new.goals {
            self.goal_obj(*g)?;
        }
        for t in &new.tasks {
            self.task_obj(*t)?;
        }
        for n in &new.notes {
            self.note_obj(*n)?;
        }
        let id = ServiceId::new();
        let given_on = format_date(new.given_on)?;
        self.transact(author, now, "service.add", |d| {
            let services = root_map(d, "services")?;
            let s = d
                .put_object(&services, id.to_string(), ObjType::Map)
                .map_err(am)?;
            put_str(d, &s, "area", new.area.as_str())?;
            put_str(d, &s, "description", &new.description)?;
            put_str(d, &s, "given_on", &given_on)?;
            put_links::<GoalId>(d, &s, "goals", &new.goals)?;
            put_links::<TaskId>(d, &s, "tasks", &new.tasks)?;
            put_links::<NoteId>(d, &s, "notes", &new.notes)?;
            put_str(d, &s, "recorded_user", &author.user.to_string())?;
            put_str(d, &s, "recorded_device", &author.device.to_string())?;
            put_str(d, &s, "recorded_at", &format_time(now)?)
        })?;
        Ok(id)
    }

    /// Records a review of the plan (by its reviewer, else by `author`); returns its id.
    pub fn add_review(
        &mut self,
        author: Author,
        new: &NewReview,
        now: OffsetDateTime,
    ) -> Result<ReviewId> {
        new.validate()?;
        let id = ReviewId::new();
        let on = format_date(new.reviewed_on)?;
        self.transact(author, now, "review.add", |d| {
            let reviews = root_map(d, "reviews")?;
            let r = d
                .put_object(&reviews, id.to_string(), ObjType::Map)
                .map_err(am)?;
            put_str(d, &r, "reviewed_on", &on)?;
            put_str(
                d,
                &r,
                "reviewer",
                &new.reviewer.unwrap_or(author.user).to_string(),
            )?;
            put_str(d, &r, "summary", &new.summary)?;
            put_str(d, &r, "recorded_at", &format_time(now)?)
        })?;
        Ok(id)
    }

    /// Records the client profile: writes only the fields that differ from what the document
    /// holds (a field set to `None` is removed), so that two phones each recording one field
    /// do not conflict on the others. Nothing is written when nothing differs.
    pub fn set_profile(
        &mut self,
        author: Author,
        profile: &ClientProfile,
        now: OffsetDateTime,
    ) -> Result<()> {
        let new = profile.clone().normalized();
        new.validate(now.year())?;
        let old = self.profile();
        if old == new {
            return Ok(());
        }
        let text = |v: Option<&dyn ToString>| v.map(|v| v.to_string());
        self.transact(author, now, "profile.update", |d| {
            let pairs: [(&str, Option<String>, Option<String>); 7] = [
                (
                    "profile.gender",
                    text(old.gender.as_ref().map(|v| v as _)),
                    text(new.gender.as_ref().map(|v| v as _)),
                ),
                (
                    "profile.nationality",
                    text(old.nationality.as_ref().map(|v| v as _)),
                    text(new.nationality.as_ref().map(|v| v as _)),
                ),
                (
                    "profile.labour_industry",
                    text(old.labour_industry.as_ref().map(|v| v as _)),
                    text(new.labour_industry.as_ref().map(|v| v as _)),
                ),
                (
                    "profile.recruitment_method",
                    text(old.recruitment_method.as_ref().map(|v| v as _)),
                    text(new.recruitment_method.as_ref().map(|v| v as _)),
                ),
                (
                    "profile.recruitment_country",
                    text(old.recruitment_country.as_ref().map(|v| v as _)),
                    text(new.recruitment_country.as_ref().map(|v| v as _)),
                ),
                (
                    "profile.htcds_status",
                    text(old.htcds_status.as_ref().map(|v| v as _)),
                    text(new.htcds_status.as_ref().map(|v| v as _)),
                ),
                (
                    "profile.closure_reason",
                    text(old.closure_reason.as_ref().map(|v| v as _)),
                    text(new.closure_reason.as_ref().map(|v| v as _)),
                ),
            ];
            for (key, was, now) in pairs {
                put_profile(d, key, was, now)?;
            }
            if old.birth_year != new.birth_year {
                match new.birth_year {
                    Some(y) => d
                        .put(&automerge::ROOT, "profile.birth_year", i64::from(y))
                        .map_err(am)?,
                    None => d
                        .delete(&automerge::ROOT, "profile.birth_year")
                        .map_err(am)?,
                }
            }
            for v in ExploitationType::ALL {
                let key = format!("{EXPLOITATION_PREFIX}{v}");
                match (old.exploitation.contains(v), new.exploitation.contains(v)) {
                    (false, true) => d.put(&automerge::ROOT, key, true).map_err(am)?,
                    (true, false) => d.delete(&automerge::ROOT, key).map_err(am)?,
                    _ => {}
                }
            }
            for v in MeansOfControl::ALL {
                let key = format!("{CONTROL_PREFIX}{v}");
                match (
                    old.means_of_control.contains(v),
                    new.means_of_control.contains(v),
                ) {
                    (false, true) => d.put(&automerge::ROOT, key, true).map_err(am)?,
                    (true, false) => d.delete(&automerge::ROOT, key).map_err(am)?,
                    _ => {}
                }
            }
            Ok(())
        })
    }

    /// The history of the case's plan, profile and life, oldest first (notes and tasks have
    /// the timeline). Read from the document's change history: each change carries its action,
    /// author and time.
    pub fn history(&mut self) -> Vec<HistoryEntry> {
        let changes: Vec<(String, String, i64)> = self
            .doc
            .get_changes(&[])
            .iter()
            .filter_map(|c| {
                let message = c.message()?.to_string();
                Some((message, c.actor_id().to_hex_string(), c.timestamp()))
            })
            .collect();
        changes
            .into_iter()
            .filter_map(|(message, actor, at)| {
                let mut words = message.split(' ');
                let action = words.next()?;
                if !HISTORY_ACTIONS.contains(&action) {
                    return None;
                }
                let (mut goal, mut status, mut by) = (None, None, None);
                for word in words {
                    if let Some(user) = word.strip_prefix("by=") {
                        by = user.parse().ok();
                    } else if let (None, Ok(g)) = (goal, word.parse()) {
                        goal = Some(g);
                    } else if let Ok(s) = word.parse() {
                        status = Some(s);
                    }
                }
                Some(HistoryEntry {
                    at: (at != 0)
                        .then(|| OffsetDateTime::from_unix_timestamp(at).ok())
                        .flatten(),
                    author: self.author_of_actor(&actor),
                    action: action.to_owned(),
                    goal,
                    status,
                    by,
                })
            })
            .collect()
    }
}

/// Who an entry of the plan names as its author, and the fields of it that must never change
/// (for the hub's authorship check): `None` for an entry that does not read.
pub(crate) type Attribution = Option<(crate::ids::UserId, Option<crate::ids::DeviceId>, String)>;

impl CaseDoc {
    /// Every goal, service and review (`goal:ID`, `service:ID`, `review:ID`) with whom it names
    /// as its author and when.
    pub(crate) fn plan_attributions(&self) -> BTreeMap<String, Attribution> {
        let doc = self.inner();
        let mut out = BTreeMap::new();
        for (k, obj) in entries(doc, "goals") {
            let a = k
                .parse()
                .ok()
                .and_then(|id| read_goal(doc, id, &obj))
                .map(|g| {
                    let at = format!("{}", g.created_at.unix_timestamp());
                    (g.created_by.user, Some(g.created_by.device), at)
                });
            out.insert(format!("goal:{k}"), a);
        }
        for (k, obj) in entries(doc, "services") {
            let a = k
                .parse()
                .ok()
                .and_then(|id| read_service(doc, id, &obj))
                .map(|s| {
                    let at = format!("{}", s.recorded_at.unix_timestamp());
                    (s.recorded_by.user, Some(s.recorded_by.device), at)
                });
            out.insert(format!("service:{k}"), a);
        }
        for (k, obj) in entries(doc, "reviews") {
            let a = k
                .parse()
                .ok()
                .and_then(|id| read_review(doc, id, &obj))
                .map(|r| {
                    (
                        r.reviewer,
                        None,
                        format!("{}", r.recorded_at.unix_timestamp()),
                    )
                });
            out.insert(format!("review:{k}"), a);
        }
        out
    }
}

/// The profile held by the root's `profile.` keys.
pub(super) fn read_profile(doc: &AutoCommit) -> ClientProfile {
    let root = Fields::of(doc, &automerge::ROOT);
    let parsed = |key: &str| root.str(key);
    let mut p = ClientProfile {
        gender: parsed("profile.gender").and_then(|v| v.parse().ok()),
        birth_year: match root.value("profile.birth_year") {
            Some((ValueRef::Scalar(ScalarValueRef::Int(y)), _)) => i32::try_from(*y).ok(),
            Some((ValueRef::Scalar(ScalarValueRef::Uint(y)), _)) => i32::try_from(*y).ok(),
            _ => None,
        }
        .filter(|y| (ClientProfile::EARLIEST_BIRTH_YEAR..2200).contains(y)),
        nationality: parsed("profile.nationality").and_then(|v| v.parse().ok()),
        labour_industry: parsed("profile.labour_industry").and_then(|v| v.parse().ok()),
        recruitment_method: parsed("profile.recruitment_method").and_then(|v| v.parse().ok()),
        recruitment_country: parsed("profile.recruitment_country").and_then(|v| v.parse().ok()),
        htcds_status: parsed("profile.htcds_status").and_then(|v| v.parse().ok()),
        closure_reason: parsed("profile.closure_reason").and_then(|v| v.parse().ok()),
        exploitation: Vec::new(),
        means_of_control: Vec::new(),
    };
    for (key, value, _) in &root.items {
        if !matches!(value, ValueRef::Scalar(ScalarValueRef::Boolean(true))) {
            continue;
        }
        if let Some(v) = key.strip_prefix(EXPLOITATION_PREFIX) {
            p.exploitation.extend(v.parse::<ExploitationType>().ok());
        } else if let Some(v) = key.strip_prefix(CONTROL_PREFIX) {
            p.means_of_control.extend(v.parse::<MeansOfControl>().ok());
        }
    }
    p.normalized()
}
