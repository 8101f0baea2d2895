//! The release lifecycle.
//!
//! ```text
//! quarantined ─► admitted ─► approved ─► live ─► retired ─► live (roll back to it)
//!      │             │           │         │        │
//!      └► rejected   └► rejected └► revoked└► revoked└► revoked
//! rejected, revoked, retired ─► shredded (terminal)
//! ```
//! A release is immutable once admitted: only its state moves, and only along these edges.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Received, being scanned and verified; nothing may load it.
    Quarantined,
    /// Passed admission (scan, signature, manifest, sealed); waiting for approvals.
    Admitted,
    /// Failed admission, or refused by an approver.
    Rejected,
    /// Approved by the required number of distinct approvers.
    Approved,
    /// Served.
    Live,
    /// Was live, replaced by another release; can go live again (rollback).
    Retired,
    /// Withdrawn for cause; never served again.
    Revoked,
    /// Its data keys are destroyed; the ciphertext is unreadable.
    Shredded,
}

impl State {
    pub const ALL: [State; 8] = [
        State::Quarantined,
        State::Admitted,
        State::Rejected,
        State::Approved,
        State::Live,
        State::Retired,
        State::Revoked,
        State::Shredded,
    ];

    pub fn name(self) -> &'static str {
        match self {
            State::Quarantined => "quarantined",
            State::Admitted => "admitted",
            State::Rejected => "rejected",
            State::Approved => "approved",
            State::Live => "live",
            State::Retired => "retired",
            State::Revoked => "revoked",
            State::Shredded => "shredded",
        }
    }

    /// The states this one may move to.
    pub fn next(self) -> &'static [State] {
        use State::*;
        match self {
            Quarantined => &[Admitted, Rejected],
            Admitted => &[Approved, Rejected, Revoked],
            Approved => &[Live, Revoked],
            Live => &[Retired, Revoked],
            Retired => &[Live, Revoked, Shredded],
            Rejected | Revoked => &[Shredded],
            Shredded => &[],
        }
    }

    /// Checks a move, with an error that says what is allowed instead.
    pub fn transition(self, to: State) -> Result<State, TransitionError> {
        if self.next().contains(&to) {
            Ok(to)
        } else {
            Err(TransitionError { from: self, to })
        }
    }

    /// Whether a model in this state may be loaded for serving.
    pub fn servable(self) -> bool {
        self == State::Live
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub struct TransitionError {
    pub from: State,
    pub to: State,
}

impl std::fmt::Display for TransitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let allowed: Vec<&str> = self.from.next().iter().map(|s| s.name()).collect();
        if allowed.is_empty() {
            write!(f, "a {} release cannot change state", self.from)
        } else {
            write!(
                f,
                "a {} release cannot become {}; it can become: {}",
                self.from,
                self.to,
                allowed.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_is_either_an_edge_or_refused_with_the_alternatives() {
        let mut edges = 0;
        for from in State::ALL {
            for to in State::ALL {
                match from.transition(to) {
                    Ok(s) => {
                        assert_eq!(s, to);
                        edges += 1;
                    }
                    Err(e) => {
                        let text = e.to_string();
                        assert!(text.contains(from.name()), "{text}");
                        for next in from.next() {
                            assert!(text.contains(next.name()), "{text}");
                        }
                    }
                }
            }
        }
        assert_eq!(edges, 14);
    }

    #[test]
    fn only_live_releases_are_served_and_shredding_is_final() {
        assert!(State::ALL
            .iter()
            .filter(|s| s.servable())
            .eq([State::Live].iter()));
        assert!(State::Shredded.next().is_empty());
        assert!(
            State::Live.transition(State::Shredded).is_err(),
            "retire or revoke first"
        );
        assert!(
            State::Quarantined.transition(State::Live).is_err(),
            "no skipping approval"
        );
        assert!(State::Retired.transition(State::Live).is_ok(), "rollback");
        assert!(State::Revoked.transition(State::Live).is_err());
    }
}
