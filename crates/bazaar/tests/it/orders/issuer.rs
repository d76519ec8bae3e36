//! A stand-in for identity's token endpoints, so the checkout tests run
//! before (and independently of) the identity service: an Ed25519 key whose
//! JWKS is served on a port-0 listener that the platform is told is
//! identity's URL, plus the client-credentials endpoint of
//! `docs/contracts.md` (scopes per caller). Tokens carry what identity's do,
//! and every service verifies them through the JWKS as in production.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::{get, post};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

/// A throwaway test key (never used outside tests).
const PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIKvHEWGjFp2KyJM3QzUvzukoOu1+dabzf56OYB9I10C7
-----END PRIVATE KEY-----
";
/// Its public half, base64url (the JWK `x`).
const PUBLIC_X: &str = "P408yDgoeAF1OkQpP26mi18SbuZlFNmiGryYrHPM2TI";
const KID: &str = "orders-test-key";

/// Serves a JWKS and the service-token grant; signs user tokens.
pub struct Issuer {
    /// Base URL (configure it as identity's URL).
    pub url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn sign(claims: &Value) -> String {
    let key = EncodingKey::from_ed_pem(PRIVATE_PEM.as_bytes()).expect("test key");
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(KID.into());
    encode(&header, claims, &key).expect("sign")
}

/// Scopes of `docs/contracts.md`, by caller.
fn scopes(client: &str) -> &'static str {
    match client {
        "orders" => "catalog:read catalog:reserve payments:charge payments:refund",
        "notifications" => "identity:read",
        _ => "",
    }
}

impl Issuer {
    /// Serves on a free port.
    pub async fn start() -> Issuer {
        let jwks = json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "x": PUBLIC_X,
            "kid": KID, "alg": "EdDSA", "use": "sig"
        }]});
        let app = Router::new()
            .route(
                "/.well-known/jwks.json",
                get(move || {
                    let jwks = jwks.clone();
                    async move { axum::Json(jwks) }
                }),
            )
            .route(
                "/api/v1/auth/service-token/",
                post(|axum::Json(body): axum::Json<Value>| async move {
                    let client = body["client_id"].as_str().unwrap_or_default().to_string();
                    let now = now();
                    let token = sign(&json!({
                        "iss": "bazaar-identity", "aud": "bazaar-internal",
                        "sub": format!("service:{client}"), "iat": now, "exp": now + 300,
                        "jti": uuid::Uuid::new_v4().to_string(), "token_type": "service",
                        "scope": scopes(&client),
                    }));
                    axum::Json(json!({
                        "access_token": token, "token_type": "Bearer",
                        "expires_in": 300, "scope": scopes(&client),
                    }))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind issuer");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Issuer { url, server }
    }

    /// An access token for user `id`.
    pub fn access(&self, id: &str, username: &str, is_staff: bool) -> String {
        let now = now();
        sign(&json!({
            "iss": "bazaar-identity", "aud": "bazaar-api", "sub": id,
            "iat": now, "exp": now + 900, "jti": uuid::Uuid::new_v4().to_string(),
            "token_type": "access", "username": username, "is_staff": is_staff,
        }))
    }
}
