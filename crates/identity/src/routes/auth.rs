//! `/api/v1/auth/`: register, token (login), refresh, logout, service-token.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bazaar_kit::ServiceName;
use bazaar_kit::extract::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ClientIp, UserOut};
use crate::AppState;
use crate::accounts;
use crate::domain::username::fold;
use crate::error::{IdentityError, Result};
use crate::signing::tokens;
use crate::store::{self, epoch, refresh::NewRefresh};

/// `POST /register/` body. Other fields (`is_staff`, ...) are ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"username": "ada", "email": "ada@example.com", "password": "correct-horse-battery"}))]
pub struct RegisterBody {
    /// 1–150 letters, digits and `@.+-_` (surrounding white space is
    /// dropped); unique, case-insensitively.
    #[schema(max_length = 150, pattern = "^\\s*[\\w.@+-]+\\s*$")]
    username: String,
    /// An email address (at most 254 characters); unique.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// At least 8 characters, not common, not all digits, not too like the
    /// username or email.
    #[schema(min_length = 8)]
    password: String,
}

/// Creates an account → 201 user; publishes `user.registered`.
#[utoipa::path(post, path = "/api/v1/auth/register/", request_body = RegisterBody, tag = "identity",
    responses((status = 201, description = "Registered", body = UserOut), (status = 400, description = "Invalid or taken")))]
#[tracing::instrument(skip_all)]
pub async fn register(
    State(state): State<AppState>,
    Json(body): Json<RegisterBody>,
) -> Result<(StatusCode, Json<UserOut>)> {
    let sign_up = accounts::validate_sign_up(&body.username, &body.email, &body.password)
        .map_err(IdentityError::Validation)?;
    accounts::check_available(&state.db, &sign_up).await?;
    let hash = accounts::hash(body.password).await?;
    let user = accounts::create(&state.db, &sign_up, &hash, false).await?;
    state.bus.nudge();
    tracing::info!(user_id = %user.id, "user registered");
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// `POST /token/` body.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"username": "ada", "password": "correct-horse-battery"}))]
pub struct TokenBody {
    /// The username (any case); not blank.
    #[schema(
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub(crate) username: String,
    /// The password; not blank.
    #[schema(
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub(crate) password: String,
}

/// simplejwt's pair response.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub(crate) access: String,
    pub(crate) refresh: String,
    pub(crate) token_type: &'static str,
    pub(crate) expires_in: i64,
}

/// The refresh response: a new pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct Refreshed {
    pub(crate) access: String,
    pub(crate) refresh: String,
}

fn no_store<T: IntoResponse>(body: T) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// 429 when the username or the IP has too many recent failures.
async fn check_throttle(state: &AppState, keys: &[(&str, i64)]) -> Result<()> {
    let now = epoch();
    let window = state.settings.login_window_secs;
    let mut wait = 0;
    for (key, limit) in keys {
        if let Some((failures, start)) = store::throttle::get(state.db.pool(), key).await?
            && failures >= *limit
            && start + window > now
        {
            wait = wait.max(start + window - now);
        }
    }
    if wait > 0 {
        tracing::warn!(keys = ?keys.iter().map(|k| k.0).collect::<Vec<_>>(), "login throttled");
        return Err(IdentityError::Throttled(wait.unsigned_abs()));
    }
    Ok(())
}

/// Logs in → 200 `{access, refresh, token_type, expires_in}`; 401 on bad
/// credentials; 429 + `Retry-After` after repeated failures.
#[utoipa::path(post, path = "/api/v1/auth/token/", request_body = TokenBody, tag = "identity",
    responses((status = 200, description = "A token pair", body = TokenPair),
        (status = 400, description = "Blank username or password; a malformed body",
            content_type = "application/json", body = super::oauth::OAuthErrorBody),
        (status = 401, description = "Wrong credentials", content_type = "application/json", body = super::oauth::OAuthErrorBody),
        (status = 429, description = "Too many failures; see Retry-After", content_type = "application/json", body = super::oauth::OAuthErrorBody)))]
#[tracing::instrument(skip_all, fields(ip = %ip.0))]
pub async fn token(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    super::oauth::token(&state, &ip, &headers, &body).await
}

/// The password grant: simplejwt's login (JSON) and RFC 6749 §4.3 (form).
pub(crate) async fn password_grant(
    state: &AppState,
    ip: &ClientIp,
    body: TokenBody,
) -> Result<TokenPair> {
    let mut errors = bazaar_kit::error::FieldErrors::new();
    for (field, value) in [("username", &body.username), ("password", &body.password)] {
        if value.trim().is_empty() {
            errors.insert(field.into(), vec![crate::domain::BLANK.into()]);
        }
    }
    if !errors.is_empty() {
        return Err(IdentityError::Validation(errors));
    }
    let folded = fold(&body.username);
    let user_key = format!("user:{folded}");
    let ip_key = format!("ip:{}", ip.0);
    let settings = &state.settings;
    check_throttle(
        state,
        &[
            (&user_key, settings.login_failures_per_username),
            (&ip_key, settings.login_failures_per_ip),
        ],
    )
    .await?;
    let user = store::users::by_username(state.db.pool(), &folded).await?;
    let phc = user
        .as_ref()
        .filter(|u| u.is_active)
        .map(|u| u.password_hash.clone());
    let ok = accounts::verify(body.password, phc).await?;
    let Some(user) = user.filter(|_| ok) else {
        let now = epoch();
        for key in [&user_key, &ip_key] {
            store::throttle::record_failure(state.db.pool(), key, now, settings.login_window_secs)
                .await?;
        }
        return Err(IdentityError::BadCredentials);
    };
    store::throttle::clear(state.db.pool(), &user_key).await?;
    store::users::touch_login(state.db.pool(), &user.id, &bazaar_kit::clock::now_rfc3339()).await?;
    let now = epoch();
    let access = tokens::sign(
        &state.db,
        &tokens::access_claims(&user, now, settings.access_ttl_secs),
    )
    .await?;
    let (refresh, hash) = tokens::new_refresh()?;
    let family = uuid::Uuid::now_v7().to_string();
    let mut conn = state.db.pool().acquire().await?;
    store::refresh::insert(
        &mut conn,
        &NewRefresh {
            token_hash: &hash,
            family_id: &family,
            user_id: &user.id,
            now,
            expires_at: now + settings.refresh_ttl_secs,
        },
    )
    .await?;
    Ok(TokenPair {
        access,
        refresh,
        token_type: "Bearer",
        expires_in: settings.access_ttl_secs,
    })
}

/// `{refresh}` body of refresh and logout.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshBody {
    /// A refresh token from `POST /api/v1/auth/token/`.
    refresh: String,
}

/// Rotates a refresh token → 200 `{access, refresh}`. A token used before
/// is theft: its whole family is revoked and the caller gets 401.
#[utoipa::path(post, path = "/api/v1/auth/token/refresh/", request_body = RefreshBody, tag = "identity",
    responses((status = 200, description = "A new pair; the old refresh token is dead", body = Refreshed),
        (status = 401, description = "Unknown, expired or reused refresh token")))]
#[tracing::instrument(skip_all)]
pub async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshBody>,
) -> Result<Response> {
    Ok(no_store(Json(refresh_grant(&state, &body.refresh).await?)))
}

/// Rotates a refresh token (the refresh endpoint and RFC 6749 §6).
pub(crate) async fn refresh_grant(state: &AppState, refresh: &str) -> Result<Refreshed> {
    let now = epoch();
    let hash = tokens::hash_refresh(refresh);
    let mut tx = state.db.pool().begin().await?;
    let fresh = store::refresh::mark_used(&mut tx, &hash, now).await?;
    let row = store::refresh::by_hash(&mut tx, &hash)
        .await?
        .ok_or(IdentityError::TokenInvalid)?;
    if row.revoked_at.is_some() || row.expires_at <= now {
        return Err(IdentityError::TokenInvalid);
    }
    let user = store::users::by_id(&mut *tx, &row.user_id)
        .await?
        .filter(|u| u.is_active);
    let Some(user) = user.filter(|_| fresh) else {
        let revoked = store::refresh::revoke_family(&mut tx, &row.family_id, now).await?;
        tx.commit().await?;
        tracing::warn!(family = %row.family_id, user_id = %row.user_id, revoked,
            "refresh token reused (or user inactive): family revoked");
        return Err(IdentityError::TokenInvalid);
    };
    let (refresh, hash) = tokens::new_refresh()?;
    store::refresh::insert(
        &mut tx,
        &NewRefresh {
            token_hash: &hash,
            family_id: &row.family_id,
            user_id: &user.id,
            now,
            expires_at: now + state.settings.refresh_ttl_secs,
        },
    )
    .await?;
    tx.commit().await?;
    let access = tokens::sign(
        &state.db,
        &tokens::access_claims(&user, now, state.settings.access_ttl_secs),
    )
    .await?;
    Ok(Refreshed { access, refresh })
}

/// Ends the session of a refresh token → 204 (its family is revoked).
#[utoipa::path(post, path = "/api/v1/auth/logout/", request_body = RefreshBody, tag = "identity",
    responses((status = 204, description = "The refresh token is revoked"),
        (status = 401, description = "Unknown refresh token")))]
#[tracing::instrument(skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    Json(body): Json<RefreshBody>,
) -> Result<StatusCode> {
    let now = epoch();
    let hash = tokens::hash_refresh(&body.refresh);
    let mut conn = state.db.pool().acquire().await?;
    if store::refresh::revoke_family_of(&mut conn, &hash, now).await? == 0 {
        // Nothing live: an unknown or expired token is a 401; one already
        // revoked (a repeated logout) is fine.
        store::refresh::by_hash(&mut conn, &hash)
            .await?
            .filter(|r| r.expires_at > now)
            .ok_or(IdentityError::TokenInvalid)?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// OAuth2 client-credentials request (JSON or form-encoded).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ServiceTokenBody {
    /// Only `client_credentials`.
    #[schema(schema_with = grant_type_schema)]
    pub(crate) grant_type: String,
    #[serde(default)]
    pub(crate) client_id: Option<String>,
    #[serde(default)]
    pub(crate) client_secret: Option<String>,
}

fn grant_type_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["client_credentials"]))
        .build()
}

/// The client-credentials response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceTokenOut {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    scope: String,
}

/// Scopes each calling service is granted (docs/contracts.md).
pub fn scopes_for(service: ServiceName) -> &'static str {
    match service {
        ServiceName::Orders => {
            "catalog:read catalog:reserve payments:charge payments:refund service"
        }
        ServiceName::Notifications => "identity:read service",
        _ => "service",
    }
}

pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// Issues a service token to a service that proves its client secret.
#[utoipa::path(post, path = "/api/v1/auth/service-token/", request_body = ServiceTokenBody, tag = "identity",
    responses((status = 200, description = "A service token", body = ServiceTokenOut),
        (status = 400, description = "Malformed request", content_type = "application/json", body = super::oauth::OAuthErrorBody),
        (status = 401, description = "Wrong client credentials", content_type = "application/json", body = super::oauth::OAuthErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn service_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    super::oauth::service_token(&state, &headers, &body).await
}

/// The client-credentials grant (RFC 6749 §4.4): client id and secret in
/// the body or in `Authorization: Basic`.
pub(crate) async fn client_credentials_grant(
    state: &AppState,
    headers: &HeaderMap,
    body: ServiceTokenBody,
) -> Result<ServiceTokenOut> {
    if body.grant_type != "client_credentials" {
        return Err(IdentityError::UnsupportedGrant);
    }
    let (client_id, secret) = match (body.client_id, body.client_secret) {
        (Some(id), Some(secret)) => (id, secret),
        _ => basic_credentials(headers).ok_or(IdentityError::BadClient)?,
    };
    let service = ServiceName::parse(&client_id).ok_or(IdentityError::BadClient)?;
    let expected = state
        .config
        .client_secret(service)
        .ok_or(IdentityError::BadClient)?;
    if !tokens::secrets_match(&secret, expected.expose()) {
        tracing::warn!(client_id, "service token refused: wrong secret");
        return Err(IdentityError::BadClient);
    }
    let scope = scopes_for(service);
    let ttl = state.settings.service_ttl_secs;
    let claims = tokens::service_claims(service.as_str(), scope, epoch(), ttl);
    let access_token = tokens::sign(&state.db, &claims).await?;
    Ok(ServiceTokenOut {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        scope: scope.to_string(),
    })
}
