//! Django's default password validators (similarity to the username and
//! email, minimum length 8, the common-password list, not entirely numeric)
//! and Argon2id hashing with OWASP's parameters.

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

/// Minimum password length (Django's `MinimumLengthValidator`).
pub const MIN_LENGTH: usize = 8;
/// Django's `UserAttributeSimilarityValidator` threshold.
const MAX_SIMILARITY: f64 = 0.7;

/// Django's list of 20,000 common passwords (BSD-licensed, from
/// `django/contrib/auth/common-passwords.txt.gz`).
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
});

/// The user attributes a password must not resemble.
#[derive(Debug, Default)]
pub struct PasswordPolicy<'a> {
    /// The username.
    pub username: Option<&'a str>,
    /// The email address.
    pub email: Option<&'a str>,
}

impl PasswordPolicy<'_> {
    /// Every rule the password breaks, in Django's order; empty when fine.
    pub fn check(&self, password: &str) -> Vec<String> {
        let mut errors = Vec::new();
        let lower = password.to_lowercase();
        for (value, name) in [(self.username, "username"), (self.email, "email address")] {
            if value.is_some_and(|v| too_similar(&lower, v)) {
                errors.push(format!("The password is too similar to the {name}."));
                break;
            }
        }
        if password.chars().count() < MIN_LENGTH {
            errors.push(format!(
                "This password is too short. It must contain at least {MIN_LENGTH} characters."
            ));
        }
        if COMMON.contains(lower.trim()) {
            errors.push("This password is too common.".into());
        }
        if !password.is_empty() && password.chars().all(char::is_numeric) {
            errors.push("This password is entirely numeric.".into());
        }
        errors
    }
}

/// Django's similarity test: the whole value and each of its `\W+`-split
/// parts, compared with `SequenceMatcher.quick_ratio`.
fn too_similar(password_lower: &str, value: &str) -> bool {
    let value = value.to_lowercase();
    let mut parts: Vec<&str> = value
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .collect();
    parts.push(&value);
    parts.into_iter().any(|part| {
        !exceeds_length_ratio(password_lower, part)
            && quick_ratio(password_lower, part) >= MAX_SIMILARITY
    })
}

/// Django skips values much shorter than the password.
fn exceeds_length_ratio(password: &str, value: &str) -> bool {
    let pwd_len = password.chars().count() as f64;
    let value_len = value.chars().count() as f64;
    pwd_len >= 10.0 * value_len && value_len < MAX_SIMILARITY / 2.0 * pwd_len
}

/// `difflib.SequenceMatcher(a, b).quick_ratio()`: 2·(multiset
/// intersection) / (len a + len b).
fn quick_ratio(a: &str, b: &str) -> f64 {
    let total = a.chars().count() + b.chars().count();
    if total == 0 {
        return 1.0;
    }
    let mut counts: std::collections::HashMap<char, i64> = std::collections::HashMap::new();
    for c in b.chars() {
        *counts.entry(c).or_default() += 1;
    }
    let mut matches = 0usize;
    for c in a.chars() {
        if let Some(n) = counts.get_mut(&c)
            && *n > 0
        {
            *n -= 1;
            matches += 1;
        }
    }
    2.0 * matches as f64 / total as f64
}

/// Argon2id with OWASP's minimum: 19 MiB, 2 passes, 1 lane.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string of `password` with a fresh salt. CPU-heavy: call it
/// from `spawn_blocking`.
pub fn hash_password(password: &str) -> Result<String, String> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// A hash no password matches (Django's unusable password).
pub const UNUSABLE: &str = "!";

/// A real hash to verify against when the user does not exist, so a miss
/// costs as much as a hit and timing does not reveal which usernames exist.
static DUMMY: LazyLock<String> = LazyLock::new(|| {
    hash_password("bazaar-dummy-password-for-timing").unwrap_or_else(|_| UNUSABLE.into())
});

/// Whether `password` matches `phc`; `None` runs a dummy verification
/// (same cost) and returns false. CPU-heavy: call from `spawn_blocking`.
pub fn verify_password(password: &str, phc: Option<&str>) -> bool {
    match phc {
        Some(h) if h != UNUSABLE => hasher().verify_password(password.as_bytes(), h).is_ok(),
        _ => {
            let _ = hasher().verify_password(password.as_bytes(), DUMMY.as_str());
            false
        }
    }
}

/// Warms the dummy hash so the first failed login is not slower.
pub fn warm_up() {
    LazyLock::force(&DUMMY);
    LazyLock::force(&COMMON);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pw: &str, user: &str, email: &str) -> Vec<String> {
        PasswordPolicy {
            username: Some(user),
            email: Some(email),
        }
        .check(pw)
    }

    #[test]
    fn django_validators() {
        assert!(check("Tr0ub4dor&3-xyz", "alice", "alice@example.com").is_empty());
        assert_eq!(
            check("short1!", "alice", "a@example.com"),
            vec!["This password is too short. It must contain at least 8 characters."]
        );
        assert!(
            check("password", "alice", "a@example.com")
                .contains(&"This password is too common.".to_string())
        );
        assert!(
            check("PassWord", "alice", "a@example.com")
                .contains(&"This password is too common.".to_string())
        );
        assert!(
            check("83749201938", "alice", "a@example.com")
                .contains(&"This password is entirely numeric.".to_string())
        );
        assert_eq!(
            check("alice_wonder", "alice_wonder", "x@example.com"),
            vec!["The password is too similar to the username."]
        );
        assert_eq!(
            check("wonderland77", "alice", "wonderland77@example.com"),
            vec!["The password is too similar to the email address."]
        );
    }

    #[test]
    fn quick_ratio_matches_difflib() {
        // difflib.SequenceMatcher(a="abcd", b="bcde").quick_ratio() == 0.75
        assert!((quick_ratio("abcd", "bcde") - 0.75).abs() < 1e-9);
        assert!((quick_ratio("", "") - 1.0).abs() < 1e-9);
    }

    #[test]
    fn hashes_verify_and_miss() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse", Some(&h)));
        assert!(!verify_password("wrong horse", Some(&h)));
        assert!(!verify_password("anything", None));
        assert!(!verify_password("!", Some(UNUSABLE)));
    }
}
