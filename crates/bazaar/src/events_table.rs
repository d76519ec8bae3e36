//! The root README's services table names what each service publishes and
//! consumes; this test reads it and compares it with the services' code
//! (`events::PUBLISHED` and the subscriptions' types), so the table cannot
//! drift from what runs.

use std::collections::BTreeSet;

const README: &str = include_str!("../../../README.md");

/// `(publishes, consumes)` of a service's row, as sets of event types
/// (an em dash is the empty set).
fn row(service: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let line = README
        .lines()
        .find(|l| l.starts_with(&format!("| {service} |")))
        .unwrap_or_else(|| panic!("README.md has no services-table row for {service}"));
    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
    // "", service, owns, port, publishes, consumes, ""
    assert_eq!(cells.len(), 7, "{service}: {line}");
    (names(cells[4]), names(cells[5]))
}

fn names(cell: &str) -> BTreeSet<String> {
    cell.split(',')
        .map(|s| s.trim().trim_matches('`').to_string())
        .filter(|s| !s.is_empty() && s != "—")
        .collect()
}

fn set(types: &[&str]) -> BTreeSet<String> {
    types.iter().map(|t| (*t).to_string()).collect()
}

#[test]
fn readme_events_table_matches_the_code() {
    let services: [(&str, &[&str], &[&str]); 5] = [
        ("identity", bazaar_identity::events::PUBLISHED, &[]),
        ("catalog", bazaar_catalog::events::PUBLISHED, &[]),
        ("orders", bazaar_orders::events::PUBLISHED, &[]),
        ("payments", bazaar_payments::events::PUBLISHED, &[]),
        (
            "notifications",
            bazaar_notifications::events::PUBLISHED,
            bazaar_notifications::events::TYPES,
        ),
    ];
    for (service, publishes, consumes) in services {
        let (readme_publishes, readme_consumes) = row(service);
        assert_eq!(readme_publishes, set(publishes), "{service}: publishes");
        assert_eq!(readme_consumes, set(consumes), "{service}: consumes");
    }
    // Every consumed type is published by someone.
    let published: BTreeSet<String> = services.iter().flat_map(|s| set(s.1)).collect();
    for (service, _, consumes) in services {
        for t in consumes {
            assert!(
                published.contains(*t),
                "{service} consumes {t}, which nobody publishes"
            );
        }
    }
}
