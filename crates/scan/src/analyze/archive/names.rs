//! Member names as extractors treat them. A name is never trusted to say what a member
//! holds; it is checked for where an extractor would write it.

/// A member name for locations and evidence: UTF-8 (lossy), control characters escaped,
/// about 200 characters at most.
pub(super) fn display(name: &[u8]) -> String {
    let text = String::from_utf8_lossy(name);
    let mut out = String::with_capacity(text.len().min(256));
    for c in text.chars() {
        if out.len() >= 200 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// What is wrong with a member name.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct PathIssues {
    /// Starts with `/` or `\` (or `\\server`).
    pub absolute: bool,
    /// Starts with a drive letter (`C:`).
    pub drive: bool,
    /// Has a `..` component (with `/` or `\` as separators, as Windows extractors read it).
    pub dotdot: bool,
    /// Contains a backslash, a path separator on Windows and an ordinary byte elsewhere.
    pub backslash: bool,
    /// Contains NUL: C readers (miniz, unzip) stop there, Python's `zipfile` too, but
    /// not every reader does, so the name differs between them.
    pub nul: bool,
    /// Contains other control characters.
    pub control: bool,
}

impl PathIssues {
    /// The name would be written outside the extraction directory.
    pub fn escapes(self) -> bool {
        self.absolute || self.drive || self.dotdot
    }

    /// A short list of what was found, for evidence.
    pub fn describe(self) -> String {
        let parts = [
            (self.absolute, "absolute path"),
            (self.drive, "drive letter"),
            (self.dotdot, "`..` component"),
            (self.backslash, "backslash"),
            (self.nul, "NUL byte"),
            (self.control, "control character"),
        ];
        parts
            .iter()
            .filter(|p| p.0)
            .map(|p| p.1)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub(super) fn path_issues(name: &[u8]) -> PathIssues {
    let is_sep = |b: &u8| *b == b'/' || *b == b'\\';
    PathIssues {
        absolute: name.first().is_some_and(is_sep),
        drive: matches!(name, [l, b':', ..] if l.is_ascii_alphabetic()),
        dotdot: name.split(is_sep).any(|c| c == b".."),
        backslash: name.contains(&b'\\'),
        nul: name.contains(&0),
        control: name.iter().any(|&b| b != 0 && (b < 0x20 || b == 0x7f)),
    }
}

/// True when a link named `link` pointing at `target` resolves outside the directory the
/// archive is extracted into.
pub(super) fn link_escapes(link: &[u8], target: &[u8]) -> bool {
    let is_sep = |b: &u8| *b == b'/' || *b == b'\\';
    let t = path_issues(target);
    if t.absolute || t.drive {
        return true;
    }
    // Depth of the directory holding the link.
    let mut depth: i64 = 0;
    let parts: Vec<&[u8]> = link.split(is_sep).collect();
    for c in parts.iter().take(parts.len().saturating_sub(1)) {
        depth = step(depth, c);
        if depth < 0 {
            return true;
        }
    }
    for c in target.split(is_sep) {
        depth = step(depth, c);
        if depth < 0 {
            return true;
        }
    }
    false
}

fn step(depth: i64, component: &[u8]) -> i64 {
    match component {
        b"" | b"." => depth,
        b".." => depth.saturating_sub(1),
        _ => depth.saturating_add(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues() {
        assert!(path_issues(b"../../etc/passwd").escapes());
        assert!(path_issues(b"a/../../b").dotdot);
        assert!(path_issues(b"/etc/cron.d/x").absolute);
        assert!(path_issues(b"C:\\Windows\\x").drive);
        assert!(path_issues(b"a\\..\\..\\x").dotdot);
        assert!(path_issues(b"data.pkl\0.txt").nul);
        assert!(path_issues(b"a\x1b[2Jb").control);
        assert!(!path_issues(b"archive/data/0").escapes());
        assert_eq!(path_issues(b"archive/..data/0"), PathIssues::default());
        assert_eq!(path_issues(b"..."), PathIssues::default());
    }

    #[test]
    fn links() {
        assert!(link_escapes(b"a/link", b"/etc/passwd"));
        assert!(link_escapes(b"a/link", b"../../x"));
        assert!(!link_escapes(b"a/link", b"../x"));
        assert!(!link_escapes(b"a/b/link", b"../c/./d"));
        assert!(link_escapes(b"link", b"a/../../x"));
    }

    #[test]
    fn display_escapes_controls_and_clips() {
        assert_eq!(display(b"a\nb"), "a\\nb");
        assert_eq!(display(&[b'x'; 500]).chars().count(), 201);
    }
}
