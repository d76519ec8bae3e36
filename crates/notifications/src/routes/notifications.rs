//! `GET /api/v1/notifications/`: the caller's email log, newest first.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use bazaar_kit::Problem;
use bazaar_kit::auth::AuthUser;
use bazaar_kit::extract::{Json, Query};
use bazaar_kit::pagination::{Page, PageRequest};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::error::Error;
use crate::store::{self, NotificationRow};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/notifications", get(list))
}

/// One notification as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationView {
    /// Id (UUIDv7).
    pub id: String,
    /// `welcome`, `order_confirmed`, `order_rejected` or `order_cancelled`.
    pub kind: String,
    /// Always `email`.
    pub channel: String,
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC, once sent.
    pub sent_at: Option<String>,
}

impl From<NotificationRow> for NotificationView {
    fn from(r: NotificationRow) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            channel: r.channel,
            to: r.to_address,
            subject: r.subject,
            body: r.body_text,
            status: r.status,
            created_at: r.created_at,
            sent_at: r.sent_at,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    /// Staff only: whose notifications to show.
    user: Option<String>,
}

/// The caller's notifications; staff may pass `?user=<id>` for another
/// user's. A non-staff caller naming someone else gets 403.
#[utoipa::path(
    get,
    path = "/api/v1/notifications/",
    operation_id = "list_notifications",
    params(
        ("user" = Option<String>, Query, format = Uuid, description = "staff only: a user id (UUID)"),
        ("page" = Option<u64>, Query, description = "page number"),
        ("page_size" = Option<u64>, Query, description = "items per page (max 100)"),
    ),
    responses(
        (status = 200, description = "newest first, paginated", body = Page<NotificationView>),
        (status = 401, description = "no or bad token"),
        (status = 403, description = "another user's, not staff"),
    ),
    security(("bearer" = [])),
    tag = "notifications"
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(query): Query<ListQuery>,
    mut page: PageRequest,
) -> Result<Json<Page<NotificationView>>, Error> {
    let whose = match query.user.as_deref() {
        None => user.id.clone(),
        Some(other) => {
            // Hyphenated, as every id the API shows (uuid also parses the
            // simple, braced and URN forms).
            if other.len() != 36 || uuid::Uuid::parse_str(other).is_err() {
                return Err(Problem::field("user", "Must be a valid UUID.").into());
            }
            if other != user.id && !user.is_staff {
                return Err(Problem::forbidden(
                    "You do not have permission to perform this action.",
                )
                .into());
            }
            other.to_string()
        }
    };
    let count = store::count(&state.db, Some(&whose)).await?;
    page.resolve(count)?;
    let rows = store::list(&state.db, Some(&whose), page.limit(), page.offset()).await?;
    let results = rows.into_iter().map(NotificationView::from).collect();
    Ok(Json(page.page(count, results)))
}
