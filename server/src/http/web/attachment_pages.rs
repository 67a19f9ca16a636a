//! A case's attachments in the browser: the list on the case page (a thumbnail for images), the
//! download of one (audited with the case and the attachment), and a scan attached by a case
//! manager, which reaches the assigned phones by sync.
//!
//! Thumbnails are drawn on the blocking pool, outside any database turn, with the bounded
//! decoding of [`attachments::thumbnail`].

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use fieldcase_core::ids::{AttachmentId, CaseId};
use fieldcase_core::model::{Limits, MediaType, NewAttachment};
use maud::{Markup, html};

use super::auth::{WebError, WebUser};
use super::headers::secure_headers;
use super::i18n::{Lang, Msg, belgrade};
use super::layout::{Names, csrf_field, name_of, parse_case};
use crate::display::for_page;
use crate::http::state::AppState;
use crate::office::access::Ability;
use crate::office::attachments::{self, OfficeAttachment};

/// Largest upload the browser form takes: one attachment and the form around it.
const MAX_FORM_BYTES: usize = Limits::ATTACHMENT_MAX as usize + 64 * 1024;

fn size_text(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KB", bytes.div_ceil(1024))
    }
}

/// The attachments section of a case page: each with its label, kind, size, who added it and
/// when, a thumbnail for an image the office holds, and a download link; then, for whoever may
/// change the case, the form to attach a scan.
pub(super) fn section(
    l: Lang,
    user: &WebUser,
    case: CaseId,
    list: &[OfficeAttachment],
    names: &Names,
    may_change: bool,
) -> Markup {
    html! {
        section #attachments aria-labelledby="attachments-h" {
            h2 #attachments-h { (l.t(Msg::Attachments)) }
            @if list.is_empty() {
                p { (l.t(Msg::NoneYet)) }
            }
            ul.attachments { @for a in list { li.attachment {
                @let r = &a.reference;
                @let href = format!("/cases/{case}/attachments/{}", r.id);
                @if a.complete && r.media_type.is_image() {
                    img.thumb src={ (href) "/thumbnail" } alt=(for_page(&r.label)) loading="lazy";
                }
                div {
                    strong { (for_page(&r.label)) }
                    " · " (r.media_type.extension().to_uppercase()) " · " (size_text(r.size))
                    br;
                    (name_of(names, &r.author.user)) " · " (belgrade(r.added_at))
                    br;
                    @if a.complete {
                        a.download href=(href) { (l.t(Msg::Download)) }
                    } @else {
                        em { (l.t(Msg::StillArriving)) }
                    }
                }
            } } }
            @if may_change {
                form.task method="post" enctype="multipart/form-data" action={ "/cases/" (case) "/attachments" } {
                    (csrf_field(user))
                    label for="attachment-label" { (l.t(Msg::WhatItIs)) }
                    input #attachment-label name="label" required maxlength="500";
                    label for="attachment-file" { (l.t(Msg::AttachmentFile)) }
                    input #attachment-file type="file" name="file" required accept="image/jpeg,image/png,image/webp,application/pdf";
                    button #attach type="submit" { (l.t(Msg::Attach)) }
                }
            }
        }
    }
}

fn parse_attachment(id: &str) -> Result<AttachmentId, WebError> {
    id.parse().map_err(|_| WebError::NotFound)
}

/// Reads the whole of an attachment for `user`, audited as `action`.
async fn read_whole(
    state: &AppState,
    user: &WebUser,
    (case, id, action): (CaseId, AttachmentId, &'static str),
) -> Result<
    (
        fieldcase_core::model::AttachmentRef,
        zeroize::Zeroizing<Vec<u8>>,
    ),
    WebError,
> {
    user.require(Ability::ReadTeamCases)?;
    let (vault, who, now) = (state.vault().clone(), user.staff(), state.now());
    let done = state
        .db()
        .call_write(move |sql| attachments::download(sql, &vault, who, (case, id, action), now))
        .await?;
    Ok(done.keep(state.vault()))
}

/// A file name safe in any browser's download: the label's letters, digits, spaces, dots and
/// dashes (others become `_`), then the kind's extension.
fn file_name(label: &str, media: MediaType) -> String {
    let base: String = label
        .chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}.{}", base.trim(), media.extension())
}

/// `GET /cases/{id}/attachments/{attachment}`: the file, as a download (never shown inline, so
/// a PDF's scripts or an image's tricks do not run in the office's origin).
pub(super) async fn download(
    State(state): State<AppState>,
    user: WebUser,
    Path((case, id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let (case, id) = (parse_case(&case)?, parse_attachment(&id)?);
    let action = attachments::ATTACHMENT_DOWNLOADED;
    let (reference, bytes) = read_whole(&state, &user, (case, id, action)).await?;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        file_name(&reference.label, reference.media_type)
    );
    let mut response = (secure_headers(), bytes.to_vec()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(reference.media_type.as_str()),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// `GET /cases/{id}/attachments/{attachment}/thumbnail`: a small JPEG of an image attachment,
/// or 422 for one that does not decode within the bounds.
pub(super) async fn thumbnail_image(
    State(state): State<AppState>,
    user: WebUser,
    Path((case, id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let (case, id) = (parse_case(&case)?, parse_attachment(&id)?);
    let action = attachments::ATTACHMENT_THUMBNAIL;
    let (reference, bytes) = read_whole(&state, &user, (case, id, action)).await?;
    let drawn =
        tokio::task::spawn_blocking(move || attachments::thumbnail(&bytes, reference.media_type))
            .await
            .map_err(|_| {
                WebError::Internal(crate::http::error::AppError::internal(&"thumbnail"))
            })?;
    match drawn {
        Ok(jpeg) => {
            let mut response = (secure_headers(), jpeg).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
            Ok(response)
        }
        Err(_) => Ok((StatusCode::UNPROCESSABLE_ENTITY, secure_headers()).into_response()),
    }
}

/// `POST /cases/{id}/attachments`: a case manager attaches a scan (multipart form: `csrf`,
/// `label`, `file`). Its kind is read from its first bytes; its metadata is removed; it reaches
/// the assigned phones by sync.
pub(super) async fn attach(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    mut form: Multipart,
) -> Result<Response, WebError> {
    user.require(Ability::ChangeTeamCases)?;
    let case = parse_case(&id)?;
    let (mut csrf, mut label, mut file) = (None, None, None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|_| WebError::BadInput("the form".to_owned()))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field
            .bytes()
            .await
            .map_err(|_| WebError::BadInput("the file is too large or was cut".to_owned()))?;
        match name.as_str() {
            "csrf" => csrf = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "label" => label = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "file" => file = Some(bytes.to_vec()),
            _ => {}
        }
    }
    user.check_csrf(csrf.as_deref())?;
    let bytes = file.ok_or_else(|| WebError::BadInput("file".to_owned()))?;
    let media_type = MediaType::sniff(&bytes)
        .ok_or_else(|| WebError::BadInput("the file is not a JPEG, PNG, WebP or PDF".to_owned()))?;
    let new = NewAttachment {
        label: label.unwrap_or_default(),
        media_type,
        note: None,
        task: None,
    };
    let (vault, who, now) = (state.vault().clone(), user.staff(), state.now());
    state
        .db()
        .call_write(move |sql| {
            attachments::attach_from_office(sql, &vault, who, case, &new, bytes, now)
        })
        .await?
        .keep(state.vault());
    Ok(Redirect::to(&format!("/cases/{case}#attachments")).into_response())
}

/// The body limit of the attach form's route.
pub(super) fn form_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(MAX_FORM_BYTES)
}
