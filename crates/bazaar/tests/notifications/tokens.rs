//! A stand-in token issuer for the notifications API tests, so they run
//! without identity: an Ed25519 key whose JWKS is served on a port-0
//! listener that the platform is told is identity's URL. Tokens carry what
//! identity's do (EdDSA, `kid`, iss/aud/sub/exp/iat/jti, `token_type`,
//! `username`, `is_staff`), so the services verify them through the JWKS
//! as in production.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;

/// A throwaway test key (never used outside tests).
const PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIKvHEWGjFp2KyJM3QzUvzukoOu1+dabzf56OYB9I10C7
-----END PRIVATE KEY-----
";
/// Its public half, base64url (the JWK `x`).
const PUBLIC_X: &str = "P408yDgoeAF1OkQpP26mi18SbuZlFNmiGryYrHPM2TI";
const KID: &str = "notifications-test-key";

/// Serves a JWKS and signs access tokens.
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

    /// An access token for user `id`.
    pub fn access(&self, id: &str, username: &str, is_staff: bool) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        let claims = json!({
            "iss": "bazaar-identity", "aud": "bazaar-api", "sub": id,
            "iat": now, "exp": now + 600, "jti": uuid::Uuid::new_v4().to_string(),
            "token_type": "access", "username": username, "is_staff": is_staff,
        });
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(KID.into());
        encode(&header, &claims, &self.key).expect("sign")
    }
}
