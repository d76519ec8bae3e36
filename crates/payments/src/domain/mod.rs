//! Payment types and rules; no HTTP, no SQL.

pub mod provider;

/// Where a payment is in its life; stored by [`Status::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Recorded; no provider call yet.
    Pending,
    /// A provider call owns the row until its `charging_until`.
    Charging,
    /// Money taken (final unless refunded).
    Succeeded,
    /// Refused by the provider (final).
    Declined,
    /// The provider did not answer; the charge may be tried again.
    Failed,
    /// Money given back (final).
    Refunded,
}

impl Status {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Charging => "charging",
            Status::Succeeded => "succeeded",
            Status::Declined => "declined",
            Status::Failed => "failed",
            Status::Refunded => "refunded",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Status::Pending,
            Status::Charging,
            Status::Succeeded,
            Status::Declined,
            Status::Failed,
            Status::Refunded,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

impl TryFrom<String> for Status {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Status::parse(&s).ok_or_else(|| format!("unknown payment status {s:?}"))
    }
}

/// Formats cents as the API's decimal string (`1999` → `"19.99"`).
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_has_two_places() {
        assert_eq!(money(1999), "19.99");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(100), "1.00");
        assert_eq!(money(-250), "-2.50");
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            "pending",
            "charging",
            "succeeded",
            "declined",
            "failed",
            "refunded",
        ] {
            assert_eq!(Status::parse(s).map(Status::as_str), Some(s));
        }
        assert_eq!(Status::parse("paid"), None);
    }
}
