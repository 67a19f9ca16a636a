//! The individual recovery plan: the client's goals, the services she was given and the reviews
//! of the plan. Every case "is managed and monitored according to" one.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::validation::{at_most, date_in_range, required_text};
use super::{AssistanceTag, Author, GoalStatus, Limits, ValidationError};
use crate::ids::{GoalId, NoteId, ReviewId, ServiceId, TaskId, UserId};

/// One goal of the plan, as it stands after every merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goal {
    /// The goal's id.
    pub id: GoalId,
    /// The area of help it belongs to.
    pub area: AssistanceTag,
    /// What the client wants to reach.
    pub description: String,
    /// Where it stands.
    pub status: GoalStatus,
    /// When it should be reached, if a date was agreed.
    pub target_date: Option<Date>,
    /// Who set it.
    pub created_by: Author,
    /// When it was set.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What is supplied to add a goal; it starts as [`GoalStatus::Planned`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGoal {
    /// The area of help.
    pub area: AssistanceTag,
    /// What the client wants to reach; must not be blank.
    pub description: String,
    /// When it should be reached.
    pub target_date: Option<Date>,
}

impl NewGoal {
    /// Checks the goal against the model's rules.
    pub fn validate(&self) -> Result<(), ValidationError> {
        required_text("goal", &self.description, Limits::PLAN_TEXT_MAX)?;
        if let Some(d) = self.target_date {
            date_in_range("target date", d)?;
        }
        Ok(())
    }
}

/// A change to some fields of a goal; `None` leaves a field as it is. Writing the status
/// supersedes every concurrent value it held (it settles a conflict on it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoalUpdate {
    /// New area of help.
    pub area: Option<AssistanceTag>,
    /// New description.
    pub description: Option<String>,
    /// New status.
    pub status: Option<GoalStatus>,
    /// New target date.
    pub target_date: Option<Date>,
}

impl GoalUpdate {
    /// Checks the update against the model's rules.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(d) = &self.description {
            required_text("goal", d, Limits::PLAN_TEXT_MAX)?;
        }
        if let Some(d) = self.target_date {
            date_in_range("target date", d)?;
        }
        Ok(())
    }

    /// True when the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &GoalUpdate::default()
    }
}

/// A service given to the client (a session with the psychologist, a lawyer at a hearing, a
/// day at the day centre), linked to the goals it serves and the tasks and notes that record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// The service's id.
    pub id: ServiceId,
    /// The area of help.
    pub area: AssistanceTag,
    /// What was given.
    pub description: String,
    /// The day it was given.
    pub given_on: Date,
    /// Goals it serves, sorted.
    pub goals: Vec<GoalId>,
    /// Accompaniment tasks it came with, sorted.
    pub tasks: Vec<TaskId>,
    /// Notes that record it, sorted.
    pub notes: Vec<NoteId>,
    /// Who recorded it.
    pub recorded_by: Author,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
}

/// What is supplied to record a service. Every goal, task and note named must exist in the case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewService {
    /// The area of help.
    pub area: AssistanceTag,
    /// What was given; must not be blank.
    pub description: String,
    /// The day it was given.
    pub given_on: Date,
    /// Goals it serves.
    pub goals: Vec<GoalId>,
    /// Tasks it came with.
    pub tasks: Vec<TaskId>,
    /// Notes that record it.
    pub notes: Vec<NoteId>,
}

impl NewService {
    /// Checks the service against the model's rules (the links are checked against the case
    /// where it is written).
    pub fn validate(&self) -> Result<(), ValidationError> {
        required_text("service", &self.description, Limits::PLAN_TEXT_MAX)?;
        date_in_range("date of the service", self.given_on)?;
        at_most("linked goals", self.goals.len(), Limits::LINKS_MAX)?;
        at_most("linked tasks", self.tasks.len(), Limits::LINKS_MAX)?;
        at_most("linked notes", self.notes.len(), Limits::LINKS_MAX)
    }
}

/// A review of the plan: the case manager and the client look at how it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanReview {
    /// The review's id.
    pub id: ReviewId,
    /// The day of the review.
    pub reviewed_on: Date,
    /// Who reviewed.
    pub reviewer: UserId,
    /// What was found and decided.
    pub summary: String,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
}

/// What is supplied to record a review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReview {
    /// The day of the review.
    pub reviewed_on: Date,
    /// What was found and decided; must not be blank.
    pub summary: String,
    /// Who reviewed, when not whoever records it (the office records reviews for the case
    /// manager who made them).
    pub reviewer: Option<UserId>,
}

impl NewReview {
    /// Checks the review against the model's rules.
    pub fn validate(&self) -> Result<(), ValidationError> {
        required_text("review summary", &self.summary, Limits::PLAN_TEXT_MAX)?;
        date_in_range("date of the review", self.reviewed_on)
    }
}

/// The individual recovery plan of a case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Goals, in the order they were set.
    pub goals: Vec<Goal>,
    /// Services given, earliest first.
    pub services: Vec<Service>,
    /// Reviews, earliest first.
    pub reviews: Vec<PlanReview>,
}

impl Plan {
    /// True when nothing was planned, given or reviewed yet.
    pub fn is_empty(&self) -> bool {
        self.goals.is_empty() && self.services.is_empty() && self.reviews.is_empty()
    }

    /// Checks that the plan's dates lie in the range a record may hold.
    pub(crate) fn check_times(&self) -> Result<(), ValidationError> {
        for g in &self.goals {
            super::validation::time_in_range("the time a goal was set", g.created_at)?;
            if let Some(d) = g.target_date {
                date_in_range("target date", d)?;
            }
        }
        for s in &self.services {
            super::validation::time_in_range("the time a service was recorded", s.recorded_at)?;
            date_in_range("date of the service", s.given_on)?;
        }
        for r in &self.reviews {
            super::validation::time_in_range("the time a review was recorded", r.recorded_at)?;
            date_in_range("date of the review", r.reviewed_on)?;
        }
        Ok(())
    }
}
