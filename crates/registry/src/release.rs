//! Release names: `name@version`, immutable once admitted.

use serde::{Deserialize, Serialize};

/// A release: a model name and one of its versions.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReleaseId {
    pub name: String,
    pub version: String,
}

fn part_ok(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with(['.', '-'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b) || extra.contains(&b))
}

impl ReleaseId {
    pub fn new(name: &str, version: &str) -> Result<ReleaseId, String> {
        if !part_ok(name, b"") {
            return Err(format!(
                "model name {name:?}: use 1-128 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
            ));
        }
        if !part_ok(version, b"+") {
            return Err(format!(
                "version {version:?}: use 1-128 letters, digits, '.', '_', '-' or '+', not starting with '.' or '-'"
            ));
        }
        Ok(ReleaseId {
            name: name.into(),
            version: version.into(),
        })
    }

    /// Parses `name@version`.
    pub fn parse(s: &str) -> Result<ReleaseId, String> {
        match s.split_once('@') {
            Some((name, version)) => ReleaseId::new(name, version),
            None => Err(format!("{s:?} is not a release: expected NAME@VERSION")),
        }
    }

    /// Checks a model name alone (for `rollback NAME`).
    pub fn check_model(name: &str) -> Result<(), String> {
        ReleaseId::new(name, "0").map(|_| ())
    }
}

impl std::fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

impl std::str::FromStr for ReleaseId {
    type Err = String;
    fn from_str(s: &str) -> Result<ReleaseId, String> {
        ReleaseId::parse(s)
    }
}

/// Whether a model name matches a pattern, as trust policies and API keys name models:
/// `*` matches any run of characters; everything else matches itself.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        for (p, n, want) in [
            ("*", "iris", true),
            ("iris", "iris", true),
            ("iris", "iris2", false),
            ("iris*", "iris-v2", true),
            ("*-demo", "iris-demo", true),
            ("*-demo", "iris-demo2", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXcYYb", false),
            ("ab*ba", "aba", false),
        ] {
            assert_eq!(pattern_matches(p, n), want, "{p} {n}");
        }
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!(
            ReleaseId::parse("iris@1.0.0+build.1").map(|r| r.to_string()),
            Ok("iris@1.0.0+build.1".to_string())
        );
        for bad in [
            "iris", "@1", "iris@", "../x@1", "a/b@1", "a@b@c", ".x@1", "x@-1", "a b@1",
        ] {
            assert!(ReleaseId::parse(bad).is_err(), "{bad}");
        }
        assert!(ReleaseId::parse(&format!("{}@1", "x".repeat(129))).is_err());
    }
}
