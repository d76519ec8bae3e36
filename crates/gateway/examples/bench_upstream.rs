//! A tiny fixed-response upstream for `scripts/bench-gateway.sh`: answers
//! every path with a small JSON body, serves `/readyz` and a JWKS, and
//! writes a matching access token to the file named by its second argument.
//!
//! `bench_upstream 127.0.0.1:9100 /tmp/token`

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

/// RFC 8032 test vector 1: a well-known Ed25519 key (benchmarks only!).
const SEED_HEX: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUBLIC_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const KID: &str = "bench";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

fn token() -> anyhow::Result<String> {
    let mut der = hex("302e020100300506032b657004220420");
    der.extend(hex(SEED_HEX));
    let mut head = Header::new(Algorithm::EdDSA);
    head.kid = Some(KID.into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims = serde_json::json!({
        "iss": bazaar_kit::auth::ISSUER, "aud": bazaar_kit::auth::API_AUDIENCE,
        "sub": "bench-user", "exp": now + 900, "iat": now, "jti": "bench",
        "token_type": "access", "username": "bench", "is_staff": false,
    });
    Ok(jsonwebtoken::encode(
        &head,
        &claims,
        &EncodingKey::from_ed_der(&der),
    )?)
}

async fn fixed() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"id":"0190b5c4-3f0e-7c6a-9d2e-5b1f2a3c4d5e","name":"Widget","price":"19.99","currency":"USD"}"#,
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9100".into());
    if let Some(path) = args.next() {
        std::fs::write(path, token()?)?;
    }
    let jwks = serde_json::json!({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "x": PUBLIC_X, "kid": KID, "alg": "EdDSA", "use": "sig"
    }]});
    let app = Router::new()
        .route("/readyz", get(|| async { "ok" }))
        .route(
            "/.well-known/jwks.json",
            get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        )
        .fallback(fixed);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
