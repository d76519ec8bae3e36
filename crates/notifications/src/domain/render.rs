//! Subject, plain-text and HTML bodies from the template files in
//! `templates/` (compiled into the binary). `.html` templates escape their
//! values; `.txt` ones don't.

use minijinja::Environment;
use serde::Serialize;

use super::{Kind, Rendered};

macro_rules! template_files {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/", $name)))),*]
    };
}

const FILES: &[(&str, &str)] = template_files!(
    "base.html",
    "_lines.html",
    "_lines.txt",
    "welcome.subject.txt",
    "welcome.txt",
    "welcome.html",
    "order_confirmed.subject.txt",
    "order_confirmed.txt",
    "order_confirmed.html",
    "order_rejected.subject.txt",
    "order_rejected.txt",
    "order_rejected.html",
    "order_cancelled.subject.txt",
    "order_cancelled.txt",
    "order_cancelled.html",
);

/// What the welcome templates see.
#[derive(Debug, Clone, Serialize)]
pub struct WelcomeContext {
    /// The new user's username.
    pub username: String,
}

/// One order line as the order templates show it.
#[derive(Debug, Clone, Serialize)]
pub struct LineContext {
    /// Product name at order time.
    pub name: String,
    /// Units.
    pub quantity: i64,
    /// Price of one unit (`"19.99"`).
    pub unit_price: String,
    /// `unit_price × quantity`.
    pub line_total: String,
}

/// What the order templates see.
#[derive(Debug, Clone, Serialize)]
pub struct OrderContext {
    /// The customer's username (or a neutral greeting word).
    pub username: String,
    /// The order's id.
    pub order_id: String,
    /// A short reference for subjects (first block of the id).
    pub order_ref: String,
    /// The status reason in words.
    pub reason: String,
    /// Lines with prices.
    pub lines: Vec<LineContext>,
    /// Order total (`"39.98"`).
    pub total: String,
    /// ISO currency code.
    pub currency: String,
}

/// The compiled templates.
pub struct Templates {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

impl Templates {
    /// Parses every template file; an error here is a broken template.
    pub fn load() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in FILES {
            env.add_template(name, source)?;
        }
        Ok(Self { env })
    }

    /// Renders the three parts of a `kind` email from `context`.
    pub fn render(
        &self,
        kind: Kind,
        context: &impl Serialize,
    ) -> Result<Rendered, minijinja::Error> {
        let ctx = minijinja::Value::from_serialize(context);
        let part = |ext: &str| {
            self.env
                .get_template(&format!("{}.{ext}", kind.as_str()))?
                .render(&ctx)
        };
        let subject = part("subject.txt")?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Rendered {
            subject,
            text: part("txt")?,
            html: part("html")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(reason: &str) -> OrderContext {
        OrderContext {
            username: "ada".into(),
            order_id: "0190a1b2-0000-7000-8000-000000000000".into(),
            order_ref: "0190a1b2".into(),
            reason: crate::domain::reason_in_words(Some(reason)),
            lines: vec![
                LineContext {
                    name: "Tea <Earl Grey>".into(),
                    quantity: 2,
                    unit_price: "4.50".into(),
                    line_total: "9.00".into(),
                },
                LineContext {
                    name: "Mug".into(),
                    quantity: 1,
                    unit_price: "12.00".into(),
                    line_total: "12.00".into(),
                },
            ],
            total: "21.00".into(),
            currency: "USD".into(),
        }
    }

    #[test]
    fn every_kind_renders() {
        let t = Templates::load().expect("templates parse");
        let welcome = t
            .render(
                Kind::Welcome,
                &WelcomeContext {
                    username: "ada".into(),
                },
            )
            .expect("welcome");
        assert_eq!(welcome.subject, "Welcome to Bazaar, ada!");
        assert!(welcome.text.starts_with("Hi ada,"));
        assert!(welcome.html.contains("<strong>ada</strong>"));
        for kind in [
            Kind::OrderConfirmed,
            Kind::OrderRejected,
            Kind::OrderCancelled,
        ] {
            let r = t.render(kind, &order("out_of_stock")).expect("order");
            assert!(r.subject.contains("0190a1b2"), "{}", r.subject);
            assert!(!r.subject.contains('\n'));
            assert!(
                r.text
                    .contains("2 x Tea <Earl Grey> at 4.50 USD = 9.00 USD"),
                "{}",
                r.text
            );
            assert!(r.text.contains("Total: 21.00 USD"), "{}", r.text);
            assert!(r.html.contains("21.00 USD"));
        }
    }

    #[test]
    fn rejected_email_gives_the_reason_in_words() {
        let t = Templates::load().expect("templates parse");
        let r = t
            .render(Kind::OrderRejected, &order("payment_declined"))
            .expect("renders");
        assert!(
            r.text
                .contains("because your payment was declined by the card issuer."),
            "{}",
            r.text
        );
        assert!(!r.text.contains("payment_declined"));
    }

    #[test]
    fn html_escapes_values_text_does_not() {
        let t = Templates::load().expect("templates parse");
        let r = t
            .render(Kind::OrderConfirmed, &order("x"))
            .expect("renders");
        assert!(r.html.contains("Tea &lt;Earl Grey&gt;"));
        assert!(!r.html.contains("<Earl Grey>"));
        assert!(r.text.contains("Tea <Earl Grey>"));
    }
}
