//! A stand-in token issuer for tests that must run without identity
//! (catalog, notifications): an Ed25519 key whose JWKS is served on a
//! port-0 listener that the platform is told is identity's URL. Tokens are
//! exactly what identity issues (EdDSA, `kid`, iss/aud/sub/exp/iat/jti,
//! `token_type`, `username`/`is_staff` or `scope`), so every service
//! verifies them the production way, through the JWKS.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

/// A throwaway test key (never used outside tests).
const PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIGnlkwBkN1L0b6EAy6ZFbwsBIXYWLhSPT28KVgu0Wody
-----END PRIVATE KEY-----
";
/// Its public half, base64url (the JWK `x`).
const PUBLIC_X: &str = "yhkElGB7hUXik5S2W0lCjvBT556mnv4kNIQWrxTwYA0";
const KID: &str = "catalog-test-key";

/// A stand-in token issuer.
pub struct Issuer {
    /// Base URL serving `/.well-known/jwks.json`.
    pub url: String,
    key: EncodingKey,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Issuer {
    /// Serves the JWKS on a free port.
    pub async fn start() -> Issuer {
        let jwks = json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "x": PUBLIC_X,
            "kid": KID, "alg": "EdDSA", "use": "sig"
        }]});
        let app = Router::new().route(
            "/.well-known/jwks.json",
            get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind issuer");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Issuer {
            url,
            key: EncodingKey::from_ed_pem(PRIVATE_PEM.as_bytes()).expect("test key"),
            server,
        }
    }

    fn sign(&self, mut claims: Value) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        claims["iss"] = "bazaar-identity".into();
        claims["iat"] = now.into();
        claims["exp"] = (now + 600).into();
        claims["jti"] = uuid::Uuid::new_v4().to_string().into();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(KID.into());
        encode(&header, &claims, &self.key).expect("sign")
    }

    /// An access token of a new user.
    pub fn user(&self, username: &str, is_staff: bool) -> String {
        self.access(&uuid::Uuid::now_v7().to_string(), username, is_staff)
    }

    /// An access token of the user `id`.
    pub fn access(&self, id: &str, username: &str, is_staff: bool) -> String {
        self.sign(json!({
            "aud": "bazaar-api",
            "sub": id,
            "token_type": "access",
            "username": username,
            "is_staff": is_staff,
        }))
    }

    /// A service token of `service` with `scope`.
    pub fn service(&self, service: &str, scope: &str) -> String {
        self.sign(json!({
            "aud": "bazaar-internal",
            "sub": format!("service:{service}"),
            "token_type": "service",
            "scope": scope,
        }))
    }
}
