//! Recognising a pickle without a magic number.
//!
//! Protocols 2 to 5 open with `PROTO` (`0x80`, then the protocol). Protocols 0 and 1 open
//! with any opcode, and protocol 0 is printable text (`cos\nsystem\n(S'id'\ntR.`), so the
//! only reliable test is to run the unpickler for a while: a real pickle reaches `STOP`,
//! or keeps executing to the end of the sniffing window, or at least imports a global with
//! a well-formed name before it breaks. Ordinary text stops at its first or second byte
//! (a space, `#`, `{` are not opcodes; `I`, `S`, `c` need well-formed arguments).

use crate::error::ParseErrorKind;
use crate::limits::Limits;

use super::machine::{Machine, Mode};
use super::opcodes::Op;
use super::trace::{Global, Trace};

/// Bytes emulated before deciding.
pub const WINDOW: usize = 64 * 1024;

/// True when `data` starts with something the unpickler would run.
pub fn looks_like(data: &[u8]) -> bool {
    let Some(&first) = data.first() else {
        return false;
    };
    if Op::from_byte(first).is_none() {
        return false;
    }
    let binary = first == Op::Proto as u8;
    if binary && data.get(1).is_none_or(|&p| p > 5) {
        return false;
    }
    let window = data.get(..WINDOW).unwrap_or(data);
    let cut = window.len() < data.len();
    let limits = Limits {
        max_pickle_ops: 50_000,
        max_pickle_values: 200_000,
        max_pickle_depth: 128,
        max_string_bytes: WINDOW as u64,
        ..Limits::default()
    };
    let mut ops = limits.max_pickle_ops;
    let machine = Machine::new(window, 0, Mode::Plain, &limits, &mut ops);
    // Text is read strictly (a FLOAT line that is not a number ends it, as in Python);
    // binary streams are not, since the window may cut a frame short.
    let machine = if binary { machine } else { machine.strict() };
    // The verdict below is settled once a binary stream has run 4 opcodes, or a text
    // stream 3 opcodes and a well-formed import: whatever follows (STOP, an error, the
    // end of the window) gives "pickle". Running on would not change the answer.
    // The condition is checked after every opcode, and an opcode imports at most one
    // global, so past the third opcode only the newest global needs a look.
    let settled: fn(&Trace<'_>) -> bool = if binary {
        |t| t.ops >= 4
    } else {
        |t| match t.ops {
            0..=2 => false,
            3 => imported(t),
            _ => t.globals.last().is_some_and(well_formed),
        }
    };
    let (t, decided) = machine.stop_when(settled).run_until_decided();
    if decided {
        return true;
    }
    let imported = imported(&t);
    let Some(err) = &t.error else {
        // Reached STOP. Binary pickles open with PROTO; text ones are believed when the
        // STOP ends the data or another pickle follows, when they imported a well-formed
        // name, or when they ran long enough that text could not have ("GIT v1.5.2." runs
        // BINFLOAT, DUP, STOP and stops mid-text).
        let rest = data
            .get(usize::try_from(t.end).unwrap_or(usize::MAX)..)
            .unwrap_or_default();
        let followed_by_pickle =
            rest.first() == Some(&(Op::Proto as u8)) && rest.get(1).is_some_and(|&p| p <= 5);
        return binary || rest.is_empty() || followed_by_pickle || imported || t.ops >= 16;
    };
    let out_of_window =
        err.is_limit() || (cut && matches!(err.kind, ParseErrorKind::Truncated { .. }));
    if out_of_window {
        return t.ops >= if binary { 2 } else { 3 };
    }
    if binary {
        imported || t.ops >= 4
    } else {
        imported && t.ops >= 3
    }
}

/// The stream imported a global whose module and name are well-formed identifiers.
fn imported(t: &Trace<'_>) -> bool {
    t.globals.iter().any(well_formed)
}

fn well_formed(g: &Global<'_>) -> bool {
    identifier_path(&g.module) && identifier_path(&g.name)
}

/// A dotted Python identifier path (`os.path`, `OrderedDict`).
pub fn identifier_path(s: &str) -> bool {
    // Byte by byte: a non-ASCII character is refused whichever of its bytes is seen.
    let mut part_start = true;
    for &b in s.as_bytes() {
        let ok = match b {
            b'.' if !part_start => {
                part_start = true;
                continue;
            }
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => true,
            b'0'..=b'9' => !part_start,
            _ => false,
        };
        if !ok {
            return false;
        }
        part_start = false;
    }
    !part_start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickles_of_every_protocol() {
        assert!(looks_like(b"\x80\x02}q\x00."));
        assert!(looks_like(
            b"\x80\x05\x95\x03\x00\x00\x00\x00\x00\x00\x00N."
        ));
        assert!(looks_like(b"(dp0\nS'a'\np1\nI1\ns."));
        assert!(looks_like(b"cos\nsystem\n(S'id'\ntR."));
        assert!(looks_like(b"N."));
        // Truncated right after the call: Python ran it.
        assert!(looks_like(b"cposix\nsystem\n(S'id'\ntR"));
        assert!(looks_like(
            b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R"
        ));
    }

    #[test]
    fn text_and_data_are_not_pickles() {
        for s in [
            &b"# Model card\n\nThis model ..."[..],
            b"{\"a\": 1}",
            b"[1, 2, 3]",
            b"Some text\n",
            b"Version 1.0\n\nNotes",
            b"class Foo:\n    pass\n",
            b"cat\ndog\n and more",
            b"0",
            b"",
            b"\x80\x07",
            b"\x80\x01\x00\x00\x00\x00",
            b"I think so.",
            b"\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80?",
            b"GIT v1.5.2.1 Release Notes\n==========\n\nFixes since v1.5.2.\n",
            b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: x\n",
            b"FUNC:_ZGTtNKSt11logic_error4whatEv@@GLIBCXX_3.4.22\nFUNC:_ZGTtNKSt13bad\n",
            b"N. is not a pickle when text follows",
        ] {
            assert!(!looks_like(s), "{:?}", String::from_utf8_lossy(s));
        }
    }

    /// The verdict as computed before sniffing learned to stop early: run the whole window.
    fn full_run_verdict(data: &[u8]) -> bool {
        let Some(&first) = data.first() else {
            return false;
        };
        if Op::from_byte(first).is_none() {
            return false;
        }
        let binary = first == Op::Proto as u8;
        if binary && data.get(1).is_none_or(|&p| p > 5) {
            return false;
        }
        let window = data.get(..WINDOW).unwrap_or(data);
        let cut = window.len() < data.len();
        let limits = Limits {
            max_pickle_ops: 50_000,
            max_pickle_values: 200_000,
            max_pickle_depth: 128,
            max_string_bytes: WINDOW as u64,
            ..Limits::default()
        };
        let mut ops = limits.max_pickle_ops;
        let machine = Machine::new(window, 0, Mode::Plain, &limits, &mut ops);
        let (t, _) = if binary { machine } else { machine.strict() }.run();
        let imported = imported(&t);
        let Some(err) = &t.error else {
            let rest = data
                .get(usize::try_from(t.end).unwrap_or(usize::MAX)..)
                .unwrap_or_default();
            let followed_by_pickle =
                rest.first() == Some(&(Op::Proto as u8)) && rest.get(1).is_some_and(|&p| p <= 5);
            return binary || rest.is_empty() || followed_by_pickle || imported || t.ops >= 16;
        };
        let out_of_window =
            err.is_limit() || (cut && matches!(err.kind, ParseErrorKind::Truncated { .. }));
        if out_of_window {
            return t.ops >= if binary { 2 } else { 3 };
        }
        if binary {
            imported || t.ops >= 4
        } else {
            imported && t.ops >= 3
        }
    }

    #[test]
    fn stopping_early_gives_the_full_run_verdict() {
        let seeds: [&[u8]; 6] = [
            b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.",
            b"(dp0\nS'a'\np1\n(lp2\nI1\naF2.5\naccopy_reg\n_reconstructor\np3\n(c__main__\nA\nc__builtin__\nobject\nNtRp4\ns.",
            b"cos\nsystem\n(S'id'\ntR.",
            b"}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00bq\x02]q\x03(K\x02G@\x04\x00\x00\x00\x00\x00\x00eu.",
            b"GIT v1.5.2.1 Release Notes\n==========\n\nFixes since v1.5.2.\n",
            b"(I1\nI2\nI3\nI4\nI5\nI6\nI7\nI8\nI9\nI10\nI11\nI12\nI13\nI14\nI15\nI16\nI17\nt.",
        ];
        let mut checked = 0usize;
        for (i, seed) in seeds.iter().enumerate() {
            for cut in 0..=seed.len() {
                let data = seed.get(..cut).unwrap_or_default();
                assert_eq!(looks_like(data), full_run_verdict(data), "{data:?}");
            }
            for data in crate::mutate::mutations(seed, 0x5eed ^ i as u64, 3000) {
                assert_eq!(looks_like(&data), full_run_verdict(&data), "{data:?}");
                checked = checked.saturating_add(1);
            }
        }
        assert!(checked >= 18_000);
    }

    #[test]
    fn identifiers() {
        assert!(identifier_path("os.path"));
        assert!(identifier_path("_codecs"));
        assert!(!identifier_path("os\nsystem"));
        assert!(!identifier_path("a b"));
        assert!(!identifier_path("1x"));
        assert!(!identifier_path(""));
        assert!(identifier_path("a.b_2._c"));
        assert!(!identifier_path("a..b"));
        assert!(!identifier_path(".a"));
        assert!(!identifier_path("a."));
        assert!(!identifier_path("a.1"));
        assert!(!identifier_path("caf\u{e9}"));
        assert!(!identifier_path("\u{e9}t\u{e9}"));
    }
}
