//! How many tokens an OpenAI-compatible answer used, for the token quotas: the upstream's
//! own `usage.total_tokens` when it reports one, else (for a stream without usage) one
//! token per streamed event, which is what chat streams send. Read with a byte search, not
//! a JSON parse, so that a quota costs nothing on the hot path.

use std::sync::OnceLock;

use memchr::memmem;

const TOTAL: &[u8] = b"\"total_tokens\"";
const EVENT: &[u8] = b"\ndata:";
const DONE: &[u8] = b"[DONE]";
/// Enough of the previous chunk to find `"total_tokens": <20 digits>` split across two.
const USAGE_TAIL: usize = 48;

/// The searchers, built once (building one costs more than searching an answer).
struct Finders {
    total: memmem::Finder<'static>,
    event: memmem::Finder<'static>,
    done: memmem::Finder<'static>,
}

fn finders() -> &'static Finders {
    static FINDERS: OnceLock<Finders> = OnceLock::new();
    FINDERS.get_or_init(|| Finders {
        total: memmem::Finder::new(TOTAL),
        event: memmem::Finder::new(EVENT),
        done: memmem::Finder::new(DONE),
    })
}

/// The last `"total_tokens": N` in `bytes`, if any.
fn last_total(bytes: &[u8]) -> Option<u64> {
    let mut found = None;
    for at in finders().total.find_iter(bytes) {
        let rest = &bytes[at + TOTAL.len()..];
        let rest = rest.trim_ascii_start();
        let Some(rest) = rest.strip_prefix(b":") else {
            continue;
        };
        let rest = rest.trim_ascii_start();
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        // A number must end inside `bytes`, or it may be cut short.
        if digits == 0 || digits == rest.len() || digits > 19 {
            continue;
        }
        if let Ok(n) = std::str::from_utf8(&rest[..digits]).map(str::parse::<u64>) {
            found = n.ok().or(found);
        }
    }
    found
}

/// The tokens a whole answer reports.
pub fn tokens_of_body(body: &[u8]) -> Option<u64> {
    last_total(body)
}

/// Counts a streamed answer chunk by chunk.
#[derive(Debug)]
pub struct StreamTokens {
    events: u64,
    done: bool,
    total: Option<u64>,
    /// The end of the stream so far, so that a pattern split between chunks is found.
    tail: Vec<u8>,
}

impl Default for StreamTokens {
    fn default() -> StreamTokens {
        StreamTokens {
            events: 0,
            done: false,
            total: None,
            // The stream's start counts as a line start.
            tail: b"\n".to_vec(),
        }
    }
}

impl StreamTokens {
    pub fn push(&mut self, chunk: &[u8]) {
        let mut joined = std::mem::take(&mut self.tail);
        let carried = joined.len();
        joined.extend_from_slice(chunk);
        // Events: only matches that end in the new chunk are new.
        self.events += finders()
            .event
            .find_iter(&joined)
            .filter(|&at| at + EVENT.len() > carried)
            .count() as u64;
        self.done |= finders().done.find(&joined).is_some();
        if let Some(t) = last_total(&joined) {
            self.total = Some(t);
        }
        let keep = joined.len().min(USAGE_TAIL);
        self.tail = joined[joined.len() - keep..].to_vec();
    }

    /// The tokens to charge: the reported usage, else one per event.
    pub fn total(&self) -> u64 {
        self.total
            .unwrap_or_else(|| self.events.saturating_sub(u64::from(self.done)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_whole_answer_reports_its_usage() {
        let body = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens": 21}}"#;
        assert_eq!(tokens_of_body(body), Some(21));
        assert_eq!(tokens_of_body(br#"{"choices":[]}"#), None);
        assert_eq!(tokens_of_body(br#"{"total_tokens":"many"}"#), None);
        // Cut short (the number may go on): not trusted.
        assert_eq!(tokens_of_body(br#"{"usage":{"total_tokens":21"#), None);
        assert_eq!(
            tokens_of_body(br#"{"total_tokens":99999999999999999999999}"#),
            None
        );
    }

    const STREAM: &[u8] = b"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\"!\"}}]}\n\n\
data: [DONE]\n\n";

    #[test]
    fn a_stream_counts_one_token_per_event_split_anywhere() {
        for at in 0..=STREAM.len() {
            let mut t = StreamTokens::default();
            let (a, b) = STREAM.split_at(at);
            t.push(a);
            t.push(b);
            assert_eq!(t.total(), 3, "split at {at}");
        }
    }

    #[test]
    fn a_stream_with_usage_reports_it_split_anywhere() {
        let with_usage = [
            STREAM.strip_suffix(b"data: [DONE]\n\n").unwrap(),
            b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":108}}\n\ndata: [DONE]\n\n",
        ]
        .concat();
        for at in 0..=with_usage.len() {
            let mut t = StreamTokens::default();
            let (a, b) = with_usage.split_at(at);
            t.push(a);
            t.push(b);
            assert_eq!(t.total(), 108, "split at {at}");
        }
        // Byte by byte.
        let mut t = StreamTokens::default();
        for b in &with_usage {
            t.push(std::slice::from_ref(b));
        }
        assert_eq!(t.total(), 108);
    }
}
