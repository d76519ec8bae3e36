//! Money: a positive amount in integer cents, parsed from DRF-style decimal
//! strings (`"19.99"`) or JSON numbers.

use std::fmt;

/// Largest price accepted: 10 digits in total, as a DRF
/// `DecimalField(max_digits=10, decimal_places=2)`.
pub const MAX_CENTS: i64 = 9_999_999_999;

/// A non-negative amount of money in cents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Money(i64);

/// Why a decimal string is not a valid amount.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a decimal number.
    #[error("A valid number is required.")]
    NotANumber,
    /// More than two decimals.
    #[error("Ensure that there are no more than 2 decimal places.")]
    TooManyDecimals,
    /// Too large.
    #[error("Ensure that there are no more than 10 digits in total.")]
    TooLarge,
    /// Zero or negative where a price is required.
    #[error("Ensure this value is greater than or equal to 0.01.")]
    NotPositive,
    /// Negative where zero is allowed (filters).
    #[error("Ensure this value is greater than or equal to 0.")]
    Negative,
}

impl Money {
    /// Parses any decimal amount ≥ 0 with at most two decimals.
    pub fn parse_amount(raw: &str) -> Result<Money, MoneyError> {
        let s = raw.trim();
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (int, frac) = match digits.split_once('.') {
            Some((i, f)) => (i, f),
            None => (digits, ""),
        };
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
            return Err(MoneyError::NotANumber);
        }
        let frac_trimmed = frac.trim_end_matches('0');
        if frac_trimmed.len() > 2 {
            return Err(MoneyError::TooManyDecimals);
        }
        let int = int.trim_start_matches('0');
        if int.len() > 8 {
            return Err(MoneyError::TooLarge);
        }
        let whole: i64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| MoneyError::NotANumber)?
        };
        let mut cents_part = frac_trimmed.to_string();
        while cents_part.len() < 2 {
            cents_part.push('0');
        }
        let cents: i64 = cents_part.parse().map_err(|_| MoneyError::NotANumber)?;
        let total = whole * 100 + cents;
        if negative && total != 0 {
            return Err(MoneyError::Negative);
        }
        Ok(Money(total))
    }

    /// Parses a price: like [`Money::parse_amount`] but strictly positive.
    pub fn parse_price(raw: &str) -> Result<Money, MoneyError> {
        match Money::parse_amount(raw) {
            Ok(m) if m.0 > 0 => Ok(m),
            Ok(_) | Err(MoneyError::Negative) => Err(MoneyError::NotPositive),
            Err(e) => Err(e),
        }
    }

    /// Parses a price given as a JSON string or number.
    pub fn from_json(value: &serde_json::Value) -> Result<Money, MoneyError> {
        match value {
            serde_json::Value::String(s) => Money::parse_price(s),
            serde_json::Value::Number(n) => {
                let text = n.to_string();
                if text.contains(['e', 'E']) {
                    return Err(MoneyError::NotANumber);
                }
                Money::parse_price(&text)
            }
            _ => Err(MoneyError::NotANumber),
        }
    }

    /// From stored cents.
    pub fn from_cents(cents: i64) -> Money {
        Money(cents)
    }

    /// The amount in cents.
    pub fn cents(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_strings() {
        assert_eq!(Money::parse_price("19.99").map(Money::cents), Ok(1999));
        assert_eq!(Money::parse_price("5").map(Money::cents), Ok(500));
        assert_eq!(Money::parse_price("5.5").map(Money::cents), Ok(550));
        assert_eq!(Money::parse_price(".5").map(Money::cents), Ok(50));
        assert_eq!(Money::parse_price("0.01").map(Money::cents), Ok(1));
        assert_eq!(Money::parse_price("1.500").map(Money::cents), Ok(150));
        assert_eq!(Money::from_cents(1999).to_string(), "19.99");
        assert_eq!(Money::from_cents(5).to_string(), "0.05");
    }

    #[test]
    fn refuses_bad_prices() {
        assert_eq!(
            Money::parse_price("1.999"),
            Err(MoneyError::TooManyDecimals)
        );
        assert_eq!(Money::parse_price("0"), Err(MoneyError::NotPositive));
        assert_eq!(Money::parse_price("-3.00"), Err(MoneyError::NotPositive));
        assert_eq!(Money::parse_price("abc"), Err(MoneyError::NotANumber));
        assert_eq!(Money::parse_price(""), Err(MoneyError::NotANumber));
        assert_eq!(Money::parse_price("."), Err(MoneyError::NotANumber));
        assert_eq!(Money::parse_price("1e3"), Err(MoneyError::NotANumber));
        assert_eq!(Money::parse_price("1000000000"), Err(MoneyError::TooLarge));
        assert_eq!(Money::parse_amount("0").map(Money::cents), Ok(0));
        assert_eq!(Money::parse_amount("-1"), Err(MoneyError::Negative));
    }

    #[test]
    fn accepts_json_numbers() {
        assert_eq!(
            Money::from_json(&serde_json::json!(19.99)).map(Money::cents),
            Ok(1999)
        );
        assert_eq!(
            Money::from_json(&serde_json::json!(7)).map(Money::cents),
            Ok(700)
        );
        assert_eq!(
            Money::from_json(&serde_json::json!(true)),
            Err(MoneyError::NotANumber)
        );
    }
}
