//! The authenticated admin API: the same operations as `fieldcase-server admin`, over signed
//! requests from a device, for tools to use. What a device's user may do is decided by
//! [`crate::office::access`] as for the web pages: admins manage devices and users; the case
//! managers and admins of a case's team see and decide its conflicts (`GET
//! /v1/admin/conflicts`, `POST /v1/admin/cases/{id}/resolve` with `{"field", "value",
//! "task_id"}`) and its quarantined uploads, every read audited. Every operation goes through the office's operations
//! ([`crate::office::devices`], [`crate::office::users`], [`crate::office::conflicts`],
//! [`crate::office::quarantine`]), which audit what they change.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use fieldcase_core::protocol::{Role, error_code};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::clock::rfc3339;
use crate::error::ServerError;
use crate::http::device_auth::Authenticated;
use crate::http::error::AppError;
use crate::http::state::AppState;
use crate::office::access::{self, Ability, ReadVia, Staff};
use crate::office::devices::{self, RevokeOutcome};
use crate::office::{sign_in, users};

/// The admin routes, to merge into the app.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/devices", get(devices))
        .route("/v1/admin/devices/{id}/revoke", post(revoke))
        .route("/v1/admin/users/{name}/deactivate", post(deactivate))
        .route("/v1/admin/users/{name}/role", post(change_role))
        .route("/v1/admin/conflicts", get(conflict_inbox))
        .route("/v1/admin/cases/{id}/resolve", post(resolve_conflict))
        .route("/v1/admin/quarantine", get(quarantine_list))
        .route("/v1/admin/quarantine/{id}", get(quarantine_show))
        .route(
            "/v1/admin/quarantine/{id}/release",
            post(quarantine_release),
        )
        .route(
            "/v1/admin/quarantine/{id}/discard",
            post(quarantine_discard),
        )
        .route("/v1/admin/audit/verify", get(audit_verify))
}

/// Who a signed request comes from, for the office's need-to-know checks.
fn staff(auth: &Authenticated) -> Staff {
    Staff {
        id: auth.user_id,
        role: auth.role,
    }
}

/// Refuses unless the device's user's role allows `ability` ([`access::may`]).
fn require(auth: &Authenticated, ability: Ability) -> Result<(), AppError> {
    if access::may(auth.role, ability) {
        Ok(())
    } else {
        Err(AppError::new(
            StatusCode::FORBIDDEN,
            error_code::FORBIDDEN,
            "your role does not allow this",
        ))
    }
}

/// An admin change asked for from a device needs its user to have signed in to the web pages
/// recently ([`sign_in::RECENT_SIGN_IN_SECS`]): the device alone is not enough.
async fn require_recent_sign_in(state: &AppState, auth: &Authenticated) -> Result<(), AppError> {
    let (user, now) = (auth.user_id, state.now());
    let recent = state
        .db()
        .call_read(move |sql| sign_in::signed_in_recently(sql, &user, now).map_err(known))
        .await?;
    if recent {
        Ok(())
    } else {
        Err(AppError::new(
            StatusCode::FORBIDDEN,
            error_code::RECENT_SIGN_IN_REQUIRED,
            "admin changes from a device need a sign-in to the office's web pages in the last 15 minutes",
        ))
    }
}

fn known(e: ServerError) -> AppError {
    match e {
        ServerError::UnknownDevice
        | ServerError::UnknownUser
        | ServerError::UnknownAlert
        | ServerError::UnknownQuarantine
        | ServerError::UnknownCase => {
            AppError::new(StatusCode::NOT_FOUND, error_code::NOT_FOUND, e.to_string())
        }
        ServerError::QuarantineDecided | ServerError::NoConflict => AppError::new(
            StatusCode::CONFLICT,
            error_code::ALREADY_DECIDED,
            e.to_string(),
        ),
        ServerError::LastAdmin => {
            AppError::new(StatusCode::CONFLICT, error_code::FORBIDDEN, e.to_string())
        }
        ServerError::NotAllowed | ServerError::OutsideTeam => {
            AppError::new(StatusCode::FORBIDDEN, error_code::FORBIDDEN, e.to_string())
        }
        ServerError::Core(fieldcase_core::CoreError::Invalid(v)) => {
            AppError::malformed(v.to_string())
        }
        ServerError::Core(fieldcase_core::CoreError::TaskNotFound) => AppError::new(
            StatusCode::NOT_FOUND,
            error_code::NOT_FOUND,
            "no task with that id",
        ),
        other => AppError::internal(&other),
    }
}

fn parse_id(text: &str) -> Result<Uuid, AppError> {
    Uuid::try_parse(text).map_err(|_| AppError::malformed("not an id"))
}

async fn devices(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<Value>, AppError> {
    require(&auth, Ability::ManageDevices)?;
    let rows = state
        .db()
        .call_read(|sql| devices::list_devices(sql).map_err(known))
        .await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|d| {
            json!({
                "device_id": d.device_id, "user_id": d.user_id, "user_name": d.user_name,
                "role": d.role.as_str(), "status": d.status.as_str(), "enrolled_at": d.enrolled_at,
                "last_sync_at": d.last_sync_at, "lease_expires_at": d.lease_expires_at,
                "revoked_at": d.revoked_at, "wiped_at": d.wiped_at, "wipe_reason": d.wipe_reason,
                "purge_receipts": d.purge_receipts,
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    auth: Authenticated,
) -> Result<Json<Value>, AppError> {
    require(&auth, Ability::ManageDevices)?;
    require_recent_sign_in(&state, &auth).await?;
    let id = parse_id(&id)?;
    let now = state.now();
    let outcome = state
        .db()
        .call_write(move |sql| devices::revoke_device(sql, &id, now).map_err(known))
        .await?;
    Ok(Json(
        json!({ "revoked": matches!(outcome, RevokeOutcome::Revoked { .. }) }),
    ))
}

async fn deactivate(
    State(state): State<AppState>,
    Path(name): Path<String>,
    auth: Authenticated,
) -> Result<Json<Value>, AppError> {
    require(&auth, Ability::ManageUsers)?;
    require_recent_sign_in(&state, &auth).await?;
    let now = state.now();
    let done = state
        .db()
        .call_write(move |sql| users::deactivate_user(sql, &name, now).map_err(known))
        .await?;
    Ok(Json(
        json!({ "user_id": done.user_id, "revoked_devices": done.revoked_devices }),
    ))
}

#[derive(serde::Deserialize)]
struct RoleBody {
    role: String,
}

async fn change_role(
    State(state): State<AppState>,
    Path(name): Path<String>,
    auth: Authenticated,
) -> Result<Json<Value>, AppError> {
    require(&auth, Ability::ManageUsers)?;
    require_recent_sign_in(&state, &auth).await?;
    let body: RoleBody = serde_json::from_slice(&auth.body)
        .map_err(|_| AppError::malformed("expected {\"role\": \"...\"}"))?;
    let role = Role::parse(&body.role).ok_or_else(|| AppError::malformed("unknown role"))?;
    let now = state.now();
    let done = state
        .db()
        .call_write(move |sql| users::change_role(sql, &name, role, now).map_err(known))
        .await?;
    Ok(Json(
        json!({ "user_id": done.user_id, "from": done.from.as_str(), "to": done.to.as_str() }),
    ))
}

fn conflict_json(c: &fieldcase_core::document::Conflict) -> Value {
    let value = |v: &fieldcase_core::document::ConflictValue| {
        json!({
            "value": v.value,
            "author_user": v.author.map(|a| a.user.to_string()),
            "author_device": v.author.map(|a| a.device.to_string()),
            "at": v.at.map(|t| rfc3339(t.unix_timestamp())),
        })
    };
    json!({
        "task_id": c.task.map(|t| t.to_string()),
        "goal_id": c.goal.map(|g| g.to_string()),
        "field": c.field,
        "shown": c.winner.value,
        "values": c.values.iter().map(value).collect::<Vec<_>>(),
    })
}

async fn conflict_inbox(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<Value>, AppError> {
    require(&auth, Ability::ReadTeamCases)?;
    let (vault, who, now) = (state.vault().clone(), staff(&auth), state.now());
    let inbox = state
        .db()
        .call_write(move |sql| access::conflict_inbox(sql, &vault, who, now).map_err(known))
        .await?;
    let list: Vec<Value> = inbox
        .iter()
        .map(|c| {
            json!({
                "case_id": c.case.to_string(),
                "client_code": c.client_code,
                "conflicts": c.conflicts.iter().map(conflict_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

#[derive(serde::Deserialize)]
struct ResolveBody {
    #[serde(default)]
    task_id: Option<String>,
    #[serde(default)]
    goal_id: Option<String>,
    field: String,
    value: String,
}

async fn resolve_conflict(
    State(state): State<AppState>,
    Path(id): Path<String>,
    auth: Authenticated,
) -> Result<StatusCode, AppError> {
    require(&auth, Ability::ChangeTeamCases)?;
    require_recent_sign_in(&state, &auth).await?;
    let body: ResolveBody = serde_json::from_slice(&auth.body).map_err(|_| {
        AppError::malformed("expected {\"field\": ..., \"value\": ..., \"task_id\": null}")
    })?;
    let decision = crate::office::conflicts::Resolution {
        case: id
            .parse()
            .map_err(|_| AppError::malformed("not a case id"))?,
        task: body
            .task_id
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|_| AppError::malformed("not a task id"))?,
        goal: body
            .goal_id
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|_| AppError::malformed("not a goal id"))?,
        field: body.field,
        value: body.value,
    };
    let (vault, now, who) = (state.vault().clone(), state.now(), staff(&auth));
    state
        .db()
        .call_write(move |sql| {
            access::require_change(sql, who, decision.case).map_err(known)?;
            crate::office::conflicts::resolve(sql, &vault, &decision, Some(&who.id), now)
                .map_err(known)
        })
        .await?
        .keep(state.vault());
    Ok(StatusCode::NO_CONTENT)
}

async fn quarantine_list(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<Value>, AppError> {
    require(&auth, Ability::ReadTeamCases)?;
    let who = staff(&auth);
    let rows = state
        .db()
        .call_read(move |sql| access::quarantine_list(sql, who).map_err(known))
        .await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|q| {
            json!({ "id": q.id, "device_id": q.device.to_string(), "user_id": q.user.to_string(),
                    "case_id": q.case.to_string(), "received_at": q.received_at, "decision": q.decision })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

async fn quarantine_show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    auth: Authenticated,
) -> Result<Json<Value>, AppError> {
    require(&auth, Ability::ReadTeamCases)?;
    let id = parse_id(&id)?;
    let (vault, who, now) = (state.vault().clone(), staff(&auth), state.now());
    let preview = state
        .db()
        .call_write(move |sql| {
            let case = crate::office::quarantine::case_of(sql, id)?;
            access::check_read(sql, who, case, ReadVia::Quarantine, now)?;
            crate::office::quarantine::preview(sql, &vault, id)
        })
        .await
        .map_err(known)?;
    let notes: Vec<Value> = preview
        .notes
        .iter()
        .map(|n| json!({ "note_id": n.id.to_string(), "author_user": n.author.user.to_string(),
                         "author_device": n.author.device.to_string(), "kind": n.kind.as_str(), "body": n.body }))
        .collect();
    Ok(Json(
        json!({ "id": id, "case_id": preview.entry.case.to_string(), "device_id": preview.entry.device.to_string(),
                    "received_at": preview.entry.received_at, "notes": notes }),
    ))
}

/// Runs a quarantine decision (`release` or `discard`) for someone on the case's team.
async fn decide(
    state: AppState,
    id: &str,
    auth: Authenticated,
    decision: crate::office::quarantine::Decision,
) -> Result<StatusCode, AppError> {
    require(&auth, Ability::ChangeTeamCases)?;
    require_recent_sign_in(&state, &auth).await?;
    let id = parse_id(id)?;
    let (vault, now, who) = (state.vault().clone(), state.now(), staff(&auth));
    state
        .db()
        .call_write(move |sql| {
            let case = crate::office::quarantine::case_of(sql, id)?;
            access::require_change(sql, who, case)?;
            decision(sql, &vault, id, now)
        })
        .await
        .map_err(known)?
        .keep(state.vault());
    Ok(StatusCode::NO_CONTENT)
}

async fn quarantine_release(
    State(state): State<AppState>,
    Path(id): Path<String>,
    auth: Authenticated,
) -> Result<StatusCode, AppError> {
    decide(state, &id, auth, crate::office::quarantine::release).await
}

async fn quarantine_discard(
    State(state): State<AppState>,
    Path(id): Path<String>,
    auth: Authenticated,
) -> Result<StatusCode, AppError> {
    decide(state, &id, auth, crate::office::quarantine::discard).await
}

async fn audit_verify(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<Value>, AppError> {
    require(&auth, Ability::ReadAuditLog)?;
    let report = state
        .db()
        .call_read(|sql| crate::office::audit::verify_chain(sql).map_err(known))
        .await?;
    Ok(Json(match report {
        crate::office::audit::ChainReport::Intact {
            entries,
            legacy,
            unkeyed,
            head,
        } => {
            json!({
                "intact": true,
                "entries": entries,
                "head": head.map(hex::encode),
                "unprotected_entries": legacy + unkeyed,
            })
        }
        crate::office::audit::ChainReport::Broken { seq, problem } => {
            json!({ "intact": false, "broken_at": seq, "problem": problem.to_string() })
        }
    }))
}
