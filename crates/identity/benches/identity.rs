//! `cargo bench -p bazaar-identity`: what identity costs per request.
//!
//! - token verification (what every service does on every request):
//!   EdDSA signature + claims checks through the kit's `Verifier`;
//! - token signing (every login/refresh);
//! - password hashing and verification with Argon2id at OWASP parameters
//!   (what dominates a login).

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bazaar_identity::signing::{keys, tokens};
use bazaar_identity::{domain, store::users::UserRow};
use bazaar_kit::auth::{API_AUDIENCE, Verifier};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

fn report(what: &str, n: u32, started: Instant) {
    let per = started.elapsed() / n;
    if per.as_millis() >= 1 {
        println!(
            "{what:<40} {:>10.2} ms/op  ({n} ops)",
            per.as_secs_f64() * 1e3
        );
    } else {
        println!(
            "{what:<40} {:>10.2} µs/op  ({n} ops)",
            per.as_secs_f64() * 1e6
        );
    }
}

fn main() {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let key = keys::generate(now, Some(now)).expect("key");
    let encoding = EncodingKey::from_ed_der(&STANDARD.decode(&key.private_pkcs8).expect("der"));
    let jwks = JwkSet {
        keys: vec![keys::jwk(&key.kid, &key.public_x)],
    };
    let user = UserRow {
        id: uuid::Uuid::now_v7().to_string(),
        username: "bench".into(),
        email: "bench@example.com".into(),
        password_hash: String::new(),
        is_staff: false,
        is_active: true,
        date_joined: String::new(),
    };
    let claims = tokens::access_claims(&user, now, 300);
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());

    let n = 20_000;
    let started = Instant::now();
    let mut token = String::new();
    for _ in 0..n {
        token = jsonwebtoken::encode(&header, &claims, &encoding).expect("sign");
    }
    report("access token signing (EdDSA)", n, started);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let verifier = Verifier::with_keys(&jwks);
    runtime.block_on(async {
        verifier.verify(&token, API_AUDIENCE).await.expect("valid");
        let started = Instant::now();
        for _ in 0..n {
            verifier.verify(&token, API_AUDIENCE).await.expect("valid");
        }
        report("access token verification (Verifier)", n, started);
    });

    let n = 20;
    let started = Instant::now();
    let mut hash = String::new();
    for _ in 0..n {
        hash = domain::hash_password("Correct-Horse-Battery-9").expect("hash");
    }
    report("password hash (Argon2id m=19MiB t=2 p=1)", n, started);
    let started = Instant::now();
    for _ in 0..n {
        assert!(domain::verify_password(
            "Correct-Horse-Battery-9",
            Some(&hash)
        ));
    }
    report("password verify = login cost", n, started);
    let started = Instant::now();
    for _ in 0..n {
        assert!(!domain::verify_password("Correct-Horse-Battery-9", None));
    }
    report("unknown user (dummy verify)", n, started);
}
