//! A record over borrowed strings, written straight into its canonical bytes: the same
//! bytes as [`Record::encode`] of the same record, without an owned copy of every field,
//! two maps and a pass through serde. For writers that make a record per request (the
//! gateway), where building and encoding a [`Record`] was a tenth of the request's CPU.
//!
//! [`Record`]: crate::record::Record
//! [`Record::encode`]: crate::record::Record::encode

use std::cell::Cell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::record::{validate_parts, MAX_RECORD_LEN, VERSION};

/// A record being made: kind, actor, optional subject, digests and attributes, stamped
/// with the time it was started. Keys are kept sorted as they are added, and a repeated
/// key replaces the earlier value, as in [`crate::Record`]'s maps.
pub struct Draft<'a> {
    kind: &'a str,
    time: Stamp,
    actor: &'a str,
    subject: Option<&'a str>,
    digests: Vec<(&'a str, &'a str)>,
    attrs: Vec<(&'a str, &'a str)>,
}

impl<'a> Draft<'a> {
    /// A record of `kind` by `actor`, stamped now.
    pub fn new(kind: &'a str, actor: &'a str) -> Draft<'a> {
        Draft::at(kind, actor, SystemTime::now())
    }

    /// A record of `kind` by `actor`, stamped `time` (RFC 3339, UTC, milliseconds).
    pub fn at(kind: &'a str, actor: &'a str, time: SystemTime) -> Draft<'a> {
        Draft {
            kind,
            time: Stamp::of(time),
            actor,
            subject: None,
            digests: Vec::new(),
            attrs: Vec::with_capacity(16),
        }
    }

    pub fn subject(mut self, subject: &'a str) -> Draft<'a> {
        self.set_subject(subject);
        self
    }

    pub fn attr(mut self, key: &'a str, value: &'a str) -> Draft<'a> {
        self.put_attr(key, value);
        self
    }

    pub fn digest(mut self, name: &'a str, value: &'a str) -> Draft<'a> {
        self.put_digest(name, value);
        self
    }

    // The same in place, for a writer that adds many fields per record: each step of the
    // by-value builder above copies the whole draft (144 bytes) when it is not inlined.

    pub fn set_subject(&mut self, subject: &'a str) {
        self.subject = Some(subject);
    }

    pub fn put_attr(&mut self, key: &'a str, value: &'a str) {
        put(&mut self.attrs, key, value);
    }

    pub fn put_digest(&mut self, name: &'a str, value: &'a str) {
        put(&mut self.digests, name, value);
    }

    /// The canonical bytes, checked as [`crate::Record::encode`] checks them.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let fields = [self.actor]
            .into_iter()
            .chain(self.subject)
            .chain(self.attrs.iter().flat_map(|(k, v)| [*k, *v]))
            .chain(self.digests.iter().flat_map(|(k, v)| [*k, *v]));
        // A whole stamp is RFC 3339 by construction; any other is checked, and refused.
        let time = (!self.time.whole).then(|| self.time.as_str());
        validate_parts(
            VERSION,
            self.kind,
            time,
            self.actor,
            self.attrs.len() + self.digests.len(),
            fields,
        )?;
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(b"{\"v\":");
        let _ = write!(out, "{VERSION}");
        out.extend_from_slice(b",\"kind\":");
        string(&mut out, self.kind)?;
        out.extend_from_slice(b",\"time\":");
        string(&mut out, self.time.as_str())?;
        out.extend_from_slice(b",\"actor\":");
        string(&mut out, self.actor)?;
        if let Some(s) = self.subject {
            out.extend_from_slice(b",\"subject\":");
            string(&mut out, s)?;
        }
        map(&mut out, b"digests", &self.digests)?;
        map(&mut out, b"attrs", &self.attrs)?;
        out.push(b'}');
        if out.len() > MAX_RECORD_LEN {
            return Err(Error::Record(format!(
                "record of {} bytes exceeds {MAX_RECORD_LEN}",
                out.len()
            )));
        }
        Ok(out)
    }
}

/// Inserts in key order; an existing key takes the new value.
fn put<'a>(pairs: &mut Vec<(&'a str, &'a str)>, key: &'a str, value: &'a str) {
    // Writers that add keys in order pay one comparison each.
    if pairs.last().is_none_or(|(last, _)| *last < key) {
        pairs.push((key, value));
        return;
    }
    match pairs.binary_search_by(|(k, _)| (*k).cmp(key)) {
        Ok(i) => pairs[i].1 = value,
        Err(i) => pairs.insert(i, (key, value)),
    }
}

/// `,"name":{"k":"v",...}`, or nothing for no entries (as serde skips an empty map).
fn map(out: &mut Vec<u8>, name: &[u8], pairs: &[(&str, &str)]) -> Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name);
    out.extend_from_slice(b"\":{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, k)?;
        out.push(b':');
        string(out, v)?;
    }
    out.push(b'}');
    Ok(())
}

/// A JSON string as serde_json writes it. serde_json escapes only `"`, `\` and control
/// characters below U+0020; a string with none of them is copied between quotes, and any
/// other goes through serde_json itself.
fn string(out: &mut Vec<u8>, s: &str) -> Result<()> {
    if plain(s.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return Ok(());
    }
    serde_json::to_writer(out, s).map_err(|e| Error::Record(e.to_string()))
}

/// Whether `s` has no byte that JSON escapes (`"`, `\`, below 0x20). No early exit: the
/// fold over every byte vectorizes, and fields are short.
fn plain(s: &[u8]) -> bool {
    !s.iter().fold(false, |escape, &b| {
        escape | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// A timestamp kept on the stack.
#[derive(Default)]
struct Stamp {
    buf: [u8; 32],
    len: usize,
    /// Whether the whole timestamp was written.
    whole: bool,
}

thread_local! {
    /// The second last stamped on this thread and its text up to the milliseconds
    /// (`2026-01-02T03:04:05.`): the records of one second share it.
    static SECOND: Cell<(u64, [u8; SECOND_LEN])> = const { Cell::new((u64::MAX, [0; SECOND_LEN])) };
}

/// `YYYY-MM-DDTHH:MM:SS.`
const SECOND_LEN: usize = 20;

impl Stamp {
    /// `time` in RFC 3339, UTC, to the millisecond (`2026-01-02T03:04:05.678Z`).
    fn of(time: SystemTime) -> Stamp {
        // A time before 1970 (a clock set wrong) leaves the stamp empty, and `encode`
        // refuses it: humantime would panic on it.
        let Ok(since) = time.duration_since(UNIX_EPOCH) else {
            return Stamp::default();
        };
        let (second, text) = SECOND.get();
        if second == since.as_secs() {
            return Stamp::within(&text, since.subsec_millis());
        }
        let mut stamp = Stamp::default();
        // A timestamp is 24 bytes and the stamp holds 32. A time humantime cannot write (past
        // year 9999) leaves the stamp empty, and `encode` refuses it, as a record does.
        stamp.whole = write!(stamp, "{}", humantime::format_rfc3339_millis(time)).is_ok();
        if !stamp.whole {
            stamp.len = 0;
        }
        if stamp.whole && stamp.len == SECOND_LEN + 4 {
            let mut text = [0; SECOND_LEN];
            text.copy_from_slice(&stamp.buf[..SECOND_LEN]);
            SECOND.set((since.as_secs(), text));
        }
        stamp
    }

    /// A second's text and the milliseconds within it.
    fn within(second: &[u8; SECOND_LEN], millis: u32) -> Stamp {
        let mut buf = [0; 32];
        buf[..SECOND_LEN].copy_from_slice(second);
        // Below 1,000: three digits.
        let digits = [millis / 100, millis / 10 % 10, millis % 10];
        for (b, d) in buf[SECOND_LEN..].iter_mut().zip(digits) {
            *b = b'0' + d as u8;
        }
        buf[SECOND_LEN + 3] = b'Z';
        Stamp {
            buf,
            len: SECOND_LEN + 4,
            whole: true,
        }
    }

    fn as_str(&self) -> &str {
        // Only whole `&str`s are written in (`write_str`).
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for Stamp {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let room = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::record::{Record, MAX_ATTRS};

    /// The same record built both ways: (draft, record).
    fn both<'a>(
        kind: &'a str,
        actor: &'a str,
        subject: Option<&'a str>,
        digests: &[(&'a str, &'a str)],
        attrs: &[(&'a str, &'a str)],
        time: SystemTime,
    ) -> (Draft<'a>, Record) {
        let mut d = Draft::at(kind, actor, time);
        let mut r = Record::new(kind, actor);
        r.time = crate::record::rfc3339_millis(time);
        if let Some(s) = subject {
            d = d.subject(s);
            r = r.subject(s);
        }
        for (k, v) in digests {
            d = d.digest(k, v);
            r = r.digest(k, v);
        }
        for (k, v) in attrs {
            d = d.attr(k, v);
            r = r.attr(k, v);
        }
        (d, r)
    }

    /// Stamps made from a second's text are what humantime writes: across second, minute,
    /// day and year boundaries, before and after one another on the same thread.
    #[test]
    fn stamps_are_what_humantime_writes() {
        let base = UNIX_EPOCH + std::time::Duration::from_secs(1_798_761_599); // 2026-12-31T23:59:59Z
        let mut times = Vec::new();
        for ms in [
            0u64, 1, 9, 10, 99, 100, 998, 999, 1000, 1001, 1999, 2000, 61_001, 86_400_500,
        ] {
            times.push(base + std::time::Duration::from_millis(ms));
        }
        times.push(base - std::time::Duration::from_millis(1));
        times.push(base + std::time::Duration::from_nanos(999_999_999));
        times.push(UNIX_EPOCH);
        // Twice over: the second time, every stamp follows another of the same or a
        // different second.
        for t in times.iter().chain(times.iter().rev()) {
            let want = humantime::format_rfc3339_millis(*t).to_string();
            assert_eq!(Stamp::of(*t).as_str(), want);
            assert_eq!(
                Stamp::of(*t).as_str(),
                want,
                "again, from the cached second"
            );
        }
    }

    /// A time before 1970 is refused with an error, not a panic.
    #[test]
    fn a_time_before_1970_is_refused() {
        let before = UNIX_EPOCH - std::time::Duration::from_secs(1);
        let err = Draft::at("inference.request", "app", before).encode();
        assert!(matches!(err, Err(Error::Record(_))), "{err:?}");
    }

    /// The escape check agrees with a byte-by-byte one for every byte value at every
    /// position of strings up to 24 bytes, among plain bytes of all kinds.
    #[test]
    fn plain_agrees_with_a_byte_by_byte_check() {
        let bytewise = |s: &[u8]| s.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\');
        let filler = b"az09 ~/\x7f\x80\xff!#[]{}";
        for len in 0..=24 {
            let base: Vec<u8> = (0..len).map(|i| filler[i % filler.len()]).collect();
            assert!(plain(&base), "{base:?}");
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut s = base.clone();
                    s[at] = b;
                    assert_eq!(plain(&s), bytewise(&s), "byte {b:#04x} at {at} of {len}");
                }
            }
        }
    }

    /// A small deterministic generator (xorshift), so that a failure names its seed.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[(self.next() % from.len() as u64) as usize]
        }
    }

    #[test]
    fn a_draft_encodes_exactly_what_a_record_encodes() {
        let long = "x".repeat(1025);
        let edge = "y".repeat(1024);
        let big = "z".repeat(1000);
        let distinct: Vec<String> = (0..=MAX_ATTRS).map(|i| format!("k{i:02}")).collect();
        let words: Vec<&str> = vec![
            "",
            "a",
            "alpha",
            "zeta",
            "é",
            "e",
            "quote \" back \\ tab \t ctl \u{1} del \u{7f} /",
            "line\nbreak",
            "say \"hi\"",
            "back\\slash",
            "unit\u{1f}sep",
            "日本語",
            "sha256:00ff",
            &long,
            &edge,
            &big,
        ];
        let kinds = [
            "inference.request",
            "release.admitted",
            "admin.Upper",
            "nofamily",
            "weird.thing",
            "alert.auth-failures",
            "admin.\"x\"",
        ];
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_795_000_123_456);
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let mut encoded = 0;
        for case in 0..4000 {
            let kind = g.pick(&kinds);
            let actor = g.pick(&words);
            let subject = g.next().is_multiple_of(3).then(|| g.pick(&words));
            let n_digests = (g.next() % 4) as usize;
            let digests: Vec<_> = (0..n_digests)
                .map(|_| (g.pick(&words), g.pick(&words)))
                .collect();
            // Now and then as many attributes as a record may hold, or one more.
            let n_attrs = match g.next() % 20 {
                0 => MAX_ATTRS - n_digests,
                1 => MAX_ATTRS + 1 - n_digests,
                n => n as usize % 14,
            };
            let attrs: Vec<_> = (0..n_attrs)
                .map(|i| {
                    if n_attrs > 16 {
                        (distinct[i].as_str(), g.pick(&words[..10]))
                    } else {
                        (g.pick(&words), g.pick(&words))
                    }
                })
                .collect();
            let (d, r) = both(kind, actor, subject, &digests, &attrs, time);
            let want = r.encode().map_err(|e| e.to_string());
            let got = d.encode().map_err(|e| e.to_string());
            assert_eq!(got, want, "case {case}");
            encoded += usize::from(want.is_ok());
        }
        // Both accepted and refused records were compared.
        assert!(encoded > 500 && encoded < 3800, "{encoded}");
    }

    #[test]
    fn many_distinct_attributes_and_the_size_limit_agree() {
        let keys: Vec<String> = (0..=MAX_ATTRS).map(|i| format!("k{i:02}")).collect();
        let value = "v".repeat(300);
        let time = SystemTime::now();
        for n in [MAX_ATTRS - 1, MAX_ATTRS, MAX_ATTRS + 1] {
            let attrs: Vec<_> = keys[..n].iter().map(|k| (k.as_str(), "v")).collect();
            let (d, r) = both("admin.ok", "a", None, &[], &attrs, time);
            let want = r.encode().map_err(|e| e.to_string());
            assert_eq!(d.encode().map_err(|e| e.to_string()), want, "{n}");
            assert_eq!(want.is_ok(), n <= MAX_ATTRS);
        }
        // 60 values of 300 bytes: over the record length limit, under the field limit.
        let attrs: Vec<_> = keys[..60]
            .iter()
            .map(|k| (k.as_str(), value.as_str()))
            .collect();
        let (d, r) = both("admin.ok", "a", None, &[], &attrs, time);
        let err = d.encode().unwrap_err().to_string();
        assert!(err.contains("exceeds"), "{err}");
        assert_eq!(r.encode().unwrap_err().to_string(), err);
    }

    /// A time the stamp cannot hold is refused, as a record refuses it, not written.
    #[test]
    fn a_time_past_year_9999_is_refused_like_a_record_refuses_it() {
        let far = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(400_000 * 365 * 86_400);
        let (d, r) = both("admin.ok", "a", None, &[], &[], far);
        let err = d.encode().unwrap_err().to_string();
        assert!(err.contains("RFC 3339"), "{err}");
        assert_eq!(r.encode().unwrap_err().to_string(), err);
    }

    #[test]
    fn a_drafted_record_reads_back() {
        let d = Draft::new("inference.request", "svc")
            .subject("bench")
            .attr("status", "200")
            .attr("route", "openai.chat")
            .attr("status", "404")
            .digest("request", "hmac-sha256:00");
        let bytes = d.encode().unwrap();
        Record::check(&bytes).unwrap();
        let r = Record::decode(&bytes).unwrap();
        assert_eq!(r.attrs["status"], "404");
        assert_eq!(r.attrs.len(), 2);
        assert!(humantime::parse_rfc3339(&r.time).is_ok());
    }
}
