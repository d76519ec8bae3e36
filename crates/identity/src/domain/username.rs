//! Django's username rule: 1–150 letters, digits and `@.+-_`
//! (`UnicodeUsernameValidator`), unique without regard to case.

use super::BLANK;

/// Longest username Django accepts.
pub const MAX_LEN: usize = 150;

/// A valid username, as the user typed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Parses a username (surrounding whitespace is trimmed, as DRF does).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(BLANK.into());
        }
        if s.chars().count() > MAX_LEN {
            return Err(format!(
                "Ensure this field has no more than {MAX_LEN} characters."
            ));
        }
        let ok = s
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_'));
        if !ok {
            return Err(
                "Enter a valid username. This value may contain only letters, \
                        numbers, and @/./+/-/_ characters."
                    .into(),
            );
        }
        Ok(Self(s.to_string()))
    }

    /// The username as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form uniqueness and login compare.
    pub fn folded(&self) -> String {
        fold(&self.0)
    }
}

/// Case-folds a username or email for comparison.
pub fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_rules() {
        assert!(Username::parse("alice").is_ok());
        assert!(Username::parse("a.b+c-d_e@f").is_ok());
        assert!(Username::parse("Zoë").is_ok());
        assert!(Username::parse(&"x".repeat(150)).is_ok());
        assert!(Username::parse(&"x".repeat(151)).is_err());
        assert_eq!(Username::parse("  ").expect_err("blank"), BLANK);
        assert!(Username::parse("has space").is_err());
        assert!(Username::parse("semi;colon").is_err());
        assert!(Username::parse("slash/").is_err());
        assert_eq!(Username::parse(" Bob ").expect("ok").as_str(), "Bob");
        assert_eq!(Username::parse("Bob").expect("ok").folded(), "bob");
    }
}
