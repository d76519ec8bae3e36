//! Django's `EmailValidator` (dot-atom local part; hostname labels and a
//! letters-only TLD, `localhost`, or an IP literal), with the domain
//! lower-cased as `normalize_email` does.

use super::BLANK;

/// Longest email Django's `EmailField` accepts.
pub const MAX_LEN: usize = 254;
const INVALID: &str = "Enter a valid email address.";

/// A valid, normalised email address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses and normalises an email address.
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
        let (user, domain) = s.rsplit_once('@').ok_or(INVALID)?;
        if !valid_user(user) || !valid_domain(domain) {
            return Err(INVALID.into());
        }
        Ok(Self(format!("{user}@{}", domain.to_lowercase())))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form uniqueness compares.
    pub fn folded(&self) -> String {
        self.0.to_lowercase()
    }
}

fn valid_user(user: &str) -> bool {
    const SPECIALS: &str = "-!#$%&'*+/=?^_`{}|~";
    !user.is_empty()
        && user.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || SPECIALS.contains(c))
        })
}

fn is_unicode_letter(c: char) -> bool {
    ('\u{a1}'..='\u{ffff}').contains(&c)
}

fn valid_label(label: &str) -> bool {
    let n = label.chars().count();
    (1..=63).contains(&n)
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || is_unicode_letter(c))
}

fn valid_tld(tld: &str) -> bool {
    let lower = tld.to_lowercase();
    if let Some(puny) = lower.strip_prefix("xn--") {
        return (1..=59).contains(&puny.len()) && puny.chars().all(|c| c.is_ascii_alphanumeric());
    }
    let n = lower.chars().count();
    (2..=63).contains(&n)
        && !lower.starts_with('-')
        && !lower.ends_with('-')
        && lower
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '-' || is_unicode_letter(c))
}

fn valid_domain(domain: &str) -> bool {
    if domain.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        return literal.parse::<std::net::IpAddr>().is_ok();
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let Some((tld, hosts)) = labels.split_last() else {
        return false;
    };
    !hosts.is_empty() && hosts.iter().all(|l| valid_label(l)) && valid_tld(tld)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_rules() {
        for ok in [
            "a@example.com",
            "first.last+tag@sub.example.co.uk",
            "x@localhost",
            "x@[127.0.0.1]",
            "o'neil@example.org",
            "u@xn--80ak6aa92e.com",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "plain",
            "@example.com",
            "a@",
            "a@example",
            "a@example.c",
            "a@example.123",
            "a..b@example.com",
            ".a@example.com",
            "a@-example.com",
            "a@example.com.",
            "a b@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Email::parse("Bob@Example.COM").expect("ok").as_str(),
            "Bob@example.com"
        );
        assert_eq!(
            Email::parse("Bob@Example.COM").expect("ok").folded(),
            "bob@example.com"
        );
    }
}
