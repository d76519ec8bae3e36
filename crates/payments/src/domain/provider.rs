//! The simulated payment provider (Stripe-style test tokens).
//!
//! `tok_visa` succeeds, `tok_chargeDeclined` is declined, `tok_timeout`
//! never answers (the caller's timeout turns it into a failed attempt), and
//! anything else is declined as an invalid token. Every call first waits the
//! configured latency, like a real network round trip.

use std::time::Duration;

/// What the provider said about one charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Money taken.
    Succeeded,
    /// Refused, with the provider's reason.
    Declined(String),
    /// No answer within the provider timeout.
    TimedOut,
}

/// The simulated provider.
#[derive(Clone, Debug)]
pub struct Provider {
    /// Added before every answer.
    pub latency: Duration,
    /// How long payments waits for an answer.
    pub timeout: Duration,
}

impl Provider {
    /// Charges `amount_cents` to the card behind `token`.
    pub async fn charge(&self, token: &str, amount_cents: i64) -> Outcome {
        let call = async {
            tokio::time::sleep(self.latency).await;
            match token {
                "tok_visa" => Outcome::Succeeded,
                "tok_chargeDeclined" => Outcome::Declined("card_declined".into()),
                "tok_timeout" => std::future::pending().await,
                _ => Outcome::Declined("invalid_token".into()),
            }
        };
        tracing::debug!(amount_cents, "provider charge");
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or(Outcome::TimedOut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_tokens_behave_as_documented() {
        let p = Provider {
            latency: Duration::ZERO,
            timeout: Duration::from_millis(50),
        };
        assert_eq!(p.charge("tok_visa", 100).await, Outcome::Succeeded);
        assert_eq!(
            p.charge("tok_chargeDeclined", 100).await,
            Outcome::Declined("card_declined".into())
        );
        assert_eq!(p.charge("tok_timeout", 100).await, Outcome::TimedOut);
        assert!(matches!(p.charge("tok_x", 1).await, Outcome::Declined(_)));
    }
}
