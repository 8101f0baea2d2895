//! The character check of every text a model reads: control characters, and characters
//! that are invisible to a human reviewer but read by the model (hidden prompts), or that
//! reorder what a reviewer sees (Trojan Source, CVE-2021-42574).
//!
//! One pass over the text: bytes while it is ASCII (only controls can be wrong there),
//! then characters, with a little state for the sequences that are legitimate in ordinary
//! text (emoji, Persian, Indic scripts, subdivision flags).
//!
//! Decisions, where the list of invisible characters needed one:
//! - ZWJ U+200D and ZWNJ U+200C are spelling in Persian and Indic scripts and glue emoji
//!   sequences (👨‍👩‍👧): allowed one at a time between two visible characters; at an edge,
//!   next to a space or in a run they carry nothing a reader sees, so they are refused.
//! - Variation selectors (U+FE00–FE0F, U+E0100–E01EF, Mongolian U+180B–180D, U+180F)
//!   follow an emoji or ideograph once in every standard sequence; runs of them encode
//!   hidden bytes ("emoji smuggling"). A run of up to 2 is allowed (a doubled VS16 is a
//!   common copy-paste artefact), 3 or more is refused. Residual: a run of ≤ 2 after each
//!   visible character still hides ≤ 2 bytes per character; richer guards plug in later.
//! - Tag characters (U+E0000–E007F) spell hidden ASCII that models read. Their one
//!   legitimate use, subdivision flags (🏴 + 3–7 tag letters or digits + CANCEL TAG, as
//!   in the flag of England), is allowed; everything else is refused.
//! - The soft hyphen U+00AD is invisible, means nothing to a model (it does not
//!   hyphenate) and is a classic way to break up a phrase a filter looks for: refused.
//! - Bidi marks (LRM U+200E, RLM U+200F, ALM U+061C) only steer display; the model reads
//!   logical order, so they carry nothing for it but can disguise text to a reviewer:
//!   refused, like the embeddings, overrides and isolates.
//! - The Hangul fillers U+3164 and U+FFA0 render as blank and are a known way to make
//!   invisible text; modern Korean does not use them: refused.

/// A character refused in a text, where it is (a character index, counted from 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Finding {
    pub index: usize,
    pub code_point: char,
    pub what: &'static str,
    /// A control character (refused always), not an invisible one (refused by policy).
    pub control: bool,
}

const TAG_FLAG: char = '\u{1F3F4}';
const CANCEL_TAG: char = '\u{E007F}';

fn control(c: char) -> bool {
    matches!(c, '\0'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{7F}'..='\u{9F}')
}

fn variation_selector(c: char) -> bool {
    matches!(
        c,
        '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}' | '\u{180B}'..='\u{180D}' | '\u{180F}'
    )
}

fn joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// Characters ignored by the guard's matching too (see `guard`): those allowed in context.
pub(crate) fn ignorable(c: char) -> bool {
    joiner(c)
        || variation_selector(c)
        || invisible(c).is_some()
        || matches!(c, '\u{E0000}'..='\u{E007F}')
}

/// Invisible or display-steering characters refused wherever they are.
fn invisible(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{00AD}' => "a soft hyphen",
        '\u{061C}' | '\u{200E}' | '\u{200F}' => "a bidi mark",
        '\u{202A}'..='\u{202E}' => "a bidi embedding or override (Trojan Source)",
        '\u{2066}'..='\u{2069}' => "a bidi isolate (Trojan Source)",
        '\u{200B}' | '\u{2060}'..='\u{2065}' | '\u{180E}' | '\u{3164}' | '\u{FFA0}' => {
            "a zero-width or blank character"
        }
        '\u{206A}'..='\u{206F}' => "a deprecated format character",
        '\u{FEFF}' => "a byte-order mark",
        '\u{FFF9}'..='\u{FFFB}' => "an interlinear annotation character",
        '\u{1D173}'..='\u{1D17A}' => "an invisible musical format character",
        _ => return None,
    })
}

fn tag_letter(c: char) -> bool {
    matches!(c, '\u{E0030}'..='\u{E0039}' | '\u{E0061}'..='\u{E007A}')
}

/// Where a tag sequence stands.
#[derive(Clone, Copy)]
enum Tags {
    None,
    /// Just after 🏴: a tag sequence may start.
    AfterFlag,
    /// Inside one: where it started, its first character, how many letters so far.
    In {
        start: usize,
        first: char,
        n: usize,
    },
}

fn finding(index: usize, c: char, what: &'static str) -> Finding {
    Finding {
        index,
        code_point: c,
        what,
        control: false,
    }
}

/// Checks one text; returns its length in characters.
pub(crate) fn scan(text: &str, reject_invisible: bool) -> Result<usize, Finding> {
    let mut prev = None;
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if b >= 0x80 {
            // `i` is a character boundary and, all before it being ASCII, a character index.
            return slow(text.get(i..).unwrap_or_default(), i, prev, reject_invisible);
        }
        if control(char::from(b)) {
            return Err(Finding {
                index: i,
                code_point: char::from(b),
                what: "a control character",
                control: true,
            });
        }
        prev = Some(char::from(b));
    }
    Ok(text.len())
}

/// The rest of a text from its first non-ASCII character, at character index `base`,
/// after `prev`.
fn slow(
    text: &str,
    base: usize,
    mut prev: Option<char>,
    reject_invisible: bool,
) -> Result<usize, Finding> {
    let mut index = base;
    let mut selectors = 0usize;
    let mut tags = Tags::None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if control(c) {
            return Err(Finding {
                index,
                code_point: c,
                what: "a control character",
                control: true,
            });
        }
        if reject_invisible {
            check(
                c,
                index,
                prev,
                chars.peek().copied(),
                &mut selectors,
                &mut tags,
            )?;
        }
        prev = Some(c);
        index += 1;
    }
    if let Tags::In { start, first, .. } = tags {
        return Err(finding(start, first, "a tag character (hidden text)"));
    }
    Ok(index)
}

fn check(
    c: char,
    index: usize,
    prev: Option<char>,
    next: Option<char>,
    selectors: &mut usize,
    tags: &mut Tags,
) -> Result<(), Finding> {
    let hidden = "a tag character (hidden text)";
    if matches!(c, '\u{E0000}'..='\u{E007F}') {
        *tags = match *tags {
            Tags::AfterFlag if tag_letter(c) => Tags::In {
                start: index,
                first: c,
                n: 1,
            },
            Tags::In { start, first, n } if tag_letter(c) && n < 7 => Tags::In {
                start,
                first,
                n: n + 1,
            },
            Tags::In { n, .. } if c == CANCEL_TAG && n >= 3 => Tags::None,
            Tags::In { start, first, .. } => return Err(finding(start, first, hidden)),
            _ => return Err(finding(index, c, hidden)),
        };
        return Ok(());
    }
    if let Tags::In { start, first, .. } = *tags {
        return Err(finding(start, first, hidden));
    }
    *tags = if c == TAG_FLAG {
        Tags::AfterFlag
    } else {
        Tags::None
    };
    if variation_selector(c) {
        *selectors += 1;
        if *selectors > 2 {
            return Err(finding(
                index,
                c,
                "a run of variation selectors (hidden data)",
            ));
        }
        return Ok(());
    }
    *selectors = 0;
    if joiner(c) {
        let visible = |o: Option<char>| o.is_some_and(|o| !o.is_whitespace() && !joiner(o));
        if !visible(prev) || !visible(next) {
            return Err(finding(index, c, "a zero-width joiner out of place"));
        }
        return Ok(());
    }
    match invisible(c) {
        Some(what) => Err(finding(index, c, what)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn refused(text: &str) -> Finding {
        scan(text, true).expect_err(text)
    }

    #[test]
    fn ordinary_text_passes_and_is_counted_in_characters() {
        for text in [
            "plain ASCII\twith tabs\r\nand newlines\n",
            "中文、日本語のテキスト、한국어 텍스트",
            "النص العربي مع أرقام ١٢٣",
            "हिन्दी पाठ, क्‍ष और ज़्",
            "می‌خواهم", // Persian, with a ZWNJ
            "👍🏽 ❤️ 1️⃣ 🏳️‍🌈 👨‍👩‍👧 👁️‍🗨️ 🏴‍☠️",
            "🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F} England", // subdivision flag
            "❤\u{FE0F}\u{FE0F} doubled VS16",
            "葛\u{E0100} an ideographic variation sequence",
            "\u{2028}line separators are visible breaks\u{2029}",
        ] {
            assert_eq!(scan(text, true), Ok(text.chars().count()), "{text}");
        }
    }

    #[test]
    fn controls_are_refused_with_their_index() {
        for (text, index, cp) in [
            ("ab\0c", 2, '\0'),
            ("\u{1B}[31m", 0, '\u{1B}'),
            ("x\u{7F}", 1, '\u{7F}'),
            ("é\u{85}", 1, '\u{85}'),
            ("日本\u{8}", 2, '\u{8}'),
            ("\u{C}", 0, '\u{C}'),
        ] {
            let f = refused(text);
            assert_eq!(
                (f.index, f.code_point, f.control),
                (index, cp, true),
                "{text:?}"
            );
        }
        // Controls are refused even when invisible characters are allowed.
        assert!(scan("a\0", false).is_err());
        assert!(scan("a\u{202E}b\u{E0041}", false).is_ok());
    }

    #[test]
    fn invisible_and_bidi_characters_are_refused() {
        for (text, index, cp) in [
            ("if x\u{202E} } \u{2066}", 4, '\u{202E}'),
            ("a\u{2067}b", 1, '\u{2067}'),
            ("ig\u{AD}nore", 2, '\u{AD}'),
            ("zero\u{200B}width", 4, '\u{200B}'),
            ("\u{FEFF}bom", 0, '\u{FEFF}'),
            ("日本\u{200F}", 2, '\u{200F}'),
            ("a\u{2062}b", 1, '\u{2062}'),
            ("a\u{180E}", 1, '\u{180E}'),
            ("\u{FFF9}note", 0, '\u{FFF9}'),
            ("a\u{3164}", 1, '\u{3164}'),
            ("a\u{1D173}", 1, '\u{1D173}'),
        ] {
            let f = refused(text);
            assert_eq!(
                (f.index, f.code_point, f.control),
                (index, cp, false),
                "{text:?}"
            );
        }
    }

    #[test]
    fn joiners_only_between_visible_characters() {
        // After ASCII: the fast path hands the last character on.
        assert_eq!(scan("ab\u{200D}c", true), Ok(4));
        for text in [
            " \u{200D}a",
            "\u{200D}a",
            "a\u{200D}",
            "a \u{200C}b",
            "a\u{200D}\u{200D}b",
            "a\u{200C} b",
        ] {
            assert!(refused(text).what.contains("joiner"), "{text:?}");
        }
    }

    #[test]
    fn selector_runs_and_smuggled_tags_are_refused() {
        let f = refused("😀\u{FE00}\u{FE01}\u{FE02}");
        assert_eq!((f.index, f.code_point), (3, '\u{FE02}'));
        let f = refused("ok\u{E0101}\u{E0102}\u{E0103}");
        assert_eq!(f.index, 4);
        // "ignore" in tag characters after an ordinary word.
        let smuggled: String = "hello "
            .chars()
            .chain(
                "ignore"
                    .chars()
                    .map(|c| char::from_u32(0xE0000 + c as u32).unwrap()),
            )
            .collect();
        let f = refused(&smuggled);
        assert_eq!((f.index, f.code_point), (6, '\u{E0069}'));
        // After a black flag, but not the shape of a subdivision flag.
        for text in [
            "🏴\u{E0067}\u{E0062}",                   // unterminated, at the end
            "🏴\u{E0067}\u{E0062}x",                  // unterminated, then text
            "🏴\u{E0067}\u{E007F}",                   // too short
            "🏴\u{E0049}\u{E0047}\u{E004E}\u{E007F}", // capitals
            "🏴\u{E0061}\u{E0062}\u{E0063}\u{E0064}\u{E0065}\u{E0066}\u{E0067}\u{E0068}\u{E007F}", // too long
            "🏴\u{E007F}",
        ] {
            let f = refused(text);
            assert_eq!(f.index, 1, "{text:?}");
        }
    }
}
