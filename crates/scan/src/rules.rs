//! The rule catalogue. Each analyzer declares its rules next to its code; this module
//! gathers them so that reports (SARIF's `tool.driver.rules`, `warden scan --list-rules`)
//! can describe every rule, and so that ids stay unique.

use crate::analyze;
use crate::severity::Severity;

/// One check Warden makes. Ids are stable: `AREA` + three digits.
#[derive(Debug)]
pub struct Rule {
    /// Stable id, e.g. `PKL001`.
    pub id: &'static str,
    /// Short kebab-case name, e.g. `pickle-dangerous-callable`.
    pub name: &'static str,
    /// Default severity; a finding may raise or lower it with evidence.
    pub severity: Severity,
    /// One line: what was found.
    pub title: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// What to do.
    pub fix: &'static str,
}

/// Every rule, grouped by analyzer.
pub fn all() -> impl Iterator<Item = &'static Rule> {
    analyze::RULE_SETS
        .iter()
        .flat_map(|set| set.iter().copied())
}

/// The rule with this id.
pub fn by_id(id: &str) -> Option<&'static Rule> {
    all().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for rule in all() {
            assert!(seen.insert(rule.id), "duplicate rule id {}", rule.id);
            let (area, num) = rule.id.split_at(rule.id.len() - 3);
            assert!(area.chars().all(|c| c.is_ascii_uppercase()), "{}", rule.id);
            assert!(num.chars().all(|c| c.is_ascii_digit()), "{}", rule.id);
            assert!(!rule.title.is_empty() && !rule.why.is_empty() && !rule.fix.is_empty());
            assert!(rule
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit()));
        }
        assert!(seen.contains("GEN001"));
    }
}
