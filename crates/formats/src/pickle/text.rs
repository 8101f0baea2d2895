//! Decoders for the text arguments of protocol-0 opcodes (`INT`, `LONG`, `FLOAT`, `STRING`,
//! `UNICODE`, `GET`/`PUT`), following what CPython accepts. They never fail on odd input:
//! the caller decides whether Python would have refused it.

/// `int(text, 0)` for values that fit in `i64`: optional sign, `0x`/`0o`/`0b` prefix,
/// underscores between digits, surrounding whitespace.
pub fn parse_int(text: &[u8]) -> Option<i64> {
    if let Some(v) = plain_decimal(text) {
        return Some(v);
    }
    let s = std::str::from_utf8(text).ok()?.trim();
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..)?),
        Some(b'+') => (false, s.get(1..)?),
        _ => (false, s),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest)
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return None;
    }
    let clean: String = body.chars().filter(|&c| c != '_').collect();
    let magnitude = i128::from_str_radix(&clean, radix).ok()?;
    let value = if negative {
        magnitude.checked_neg()?
    } else {
        magnitude
    };
    i64::try_from(value).ok()
}

/// What picklers write (`I42`, `p17`, `L-3L`): at most 18 decimal digits after an optional
/// minus, which always fit in `i64`. Parsed without the general path's copies.
fn plain_decimal(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v = 0i64;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v
            .checked_mul(10)?
            .checked_add(i64::from(d.wrapping_sub(b'0')))?;
    }
    if negative {
        v.checked_neg()
    } else {
        Some(v)
    }
}

/// `float(text)`.
pub fn parse_float(text: &[u8]) -> Option<f64> {
    // What picklers write (`F2.5`, `F1e-05`): digits, dots, signs and exponents only, which
    // the general path below would pass to `str::parse` unchanged (but for `E`, which
    // `parse` reads as `e`).
    if !text.is_empty()
        && text
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return std::str::from_utf8(text).ok()?.parse().ok();
    }
    let s = std::str::from_utf8(text).ok()?.trim();
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    match clean.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" | "+nan" | "-nan" => Some(f64::NAN),
        other => other.parse().ok(),
    }
}

/// `codecs.escape_decode`: the body of a protocol-0 `STRING` (quotes already removed).
pub fn escape_decode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut it = data.iter().copied().peekable();
    while let Some(b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(e) = it.next() else {
            out.push(b'\\');
            break;
        };
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut v = u32::from(e.saturating_sub(b'0'));
                for _ in 0..2 {
                    match it.peek() {
                        Some(&d @ b'0'..=b'7') => {
                            v = v
                                .saturating_mul(8)
                                .saturating_add(u32::from(d.wrapping_sub(b'0')));
                            it.next();
                        }
                        _ => break,
                    }
                }
                out.push(u8::try_from(v & 0xff).unwrap_or(0));
            }
            b'x' => {
                let hi = it.next().and_then(hex);
                let lo = it.next().and_then(hex);
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push(h.saturating_mul(16).saturating_add(l)),
                    _ => out.push(b'?'),
                }
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    out
}

/// `str(data, 'raw-unicode-escape')`: latin-1 bytes with `\uXXXX` and `\UXXXXXXXX`, as UTF-8.
pub fn raw_unicode_escape(data: &[u8]) -> Vec<u8> {
    // Every input byte becomes at most two output bytes (an escape shrinks), so the
    // output never grows past this.
    let mut out = Vec::with_capacity(data.len().saturating_mul(2));
    let mut utf8 = [0u8; 4];
    let mut i = 0usize;
    while let Some(&b) = data.get(i) {
        i = i.saturating_add(1);
        if b < 0x80 && b != b'\\' {
            out.push(b);
            continue;
        }
        if b == b'\\' {
            let width = match data.get(i) {
                Some(b'u') => 4,
                Some(b'U') => 8,
                _ => 0,
            };
            let digits = data.get(i.saturating_add(1)..i.saturating_add(1).saturating_add(width));
            if let (true, Some(digits)) = (width > 0, digits) {
                let code = digits.iter().try_fold(0u32, |acc, &d| {
                    Some(acc.checked_mul(16)? | u32::from(hex(d)?))
                });
                if let Some(code) = code {
                    let c = char::from_u32(code).unwrap_or('\u{fffd}');
                    out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                    i = i.saturating_add(1).saturating_add(width);
                    continue;
                }
            }
        }
        // Latin-1: the byte is the code point.
        out.extend_from_slice(char::from(b).encode_utf8(&mut utf8).as_bytes());
    }
    out
}

fn hex(d: u8) -> Option<u8> {
    match d {
        b'0'..=b'9' => Some(d.wrapping_sub(b'0')),
        b'a'..=b'f' => Some(d.wrapping_sub(b'a').wrapping_add(10)),
        b'A'..=b'F' => Some(d.wrapping_sub(b'A').wrapping_add(10)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_like_python() {
        assert_eq!(parse_int(b"42\n"), Some(42));
        assert_eq!(parse_int(b"-7"), Some(-7));
        assert_eq!(parse_int(b"0x1f"), Some(31));
        assert_eq!(parse_int(b"1_000"), Some(1000));
        assert_eq!(parse_int(b"99999999999999999999"), None);
        assert_eq!(parse_int(b"abc"), None);
        assert_eq!(parse_int(b""), None);
        assert_eq!(parse_int(b"007"), Some(7));
        assert_eq!(parse_int(b"-0"), Some(0));
        assert_eq!(
            parse_int(b"999999999999999999"),
            Some(999_999_999_999_999_999)
        );
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int(b"9223372036854775808"), None);
        assert_eq!(parse_int(b"--5"), Some(5));
        assert_eq!(parse_int(b" 12 "), Some(12));
        assert_eq!(parse_int(b"-"), None);
    }

    #[test]
    fn floats() {
        assert_eq!(parse_float(b"1.5"), Some(1.5));
        assert_eq!(parse_float(b"inf"), Some(f64::INFINITY));
        assert!(parse_float(b"nan").is_some_and(f64::is_nan));
        assert_eq!(parse_float(b"x"), None);
        assert_eq!(parse_float(b"1E5"), Some(1e5));
        assert_eq!(parse_float(b"-2.5e-3"), Some(-2.5e-3));
        assert_eq!(parse_float(b" 1.5 "), Some(1.5));
        assert_eq!(parse_float(b"1_0.5"), Some(10.5));
        assert_eq!(parse_float(b"1..5"), None);
        assert_eq!(parse_float(b"-"), None);
    }

    #[test]
    fn string_escapes() {
        assert_eq!(escape_decode(br"a\nb\x41\101\'\\"), b"a\nbAA'\\");
        assert_eq!(escape_decode(br"\q"), br"\q");
        assert_eq!(escape_decode(b"tail\\"), b"tail\\");
    }

    #[test]
    fn raw_unicode() {
        assert_eq!(raw_unicode_escape(br"a\u00e9b"), "aéb".as_bytes());
        assert_eq!(raw_unicode_escape(b"\xe9"), "é".as_bytes());
        assert_eq!(raw_unicode_escape(br"\U0001F600"), "😀".as_bytes());
        assert_eq!(raw_unicode_escape(br"\u12"), br"\u12");
        assert_eq!(raw_unicode_escape(b"ab\\"), b"ab\\");
        assert_eq!(raw_unicode_escape(br"\x41\u0041"), br"\x41A");
        assert_eq!(
            raw_unicode_escape(b"\xff\\u00ff"),
            "\u{ff}\u{ff}".as_bytes()
        );
        assert_eq!(raw_unicode_escape(br"\ud800"), "\u{fffd}".as_bytes());
    }
}
