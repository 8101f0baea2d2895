//! Two-person control: promoting a release, or exporting its weights, needs approvals from
//! a number of distinct people who hold the approver role, none of them the person who
//! admitted it. Accepting scan findings is an explicit part of an approval.

use serde::{Deserialize, Serialize};

/// The rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Distinct approvals needed (at least 2 unless explicitly lowered, which `posture`
    /// reports).
    pub required: usize,
    /// The role an approver must hold.
    pub role: String,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            required: 2,
            role: "approver".into(),
        }
    }
}

/// One approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: String,
    /// The approver accepts the release's scan findings (required when it has any).
    pub accepts_findings: bool,
    pub time: String,
}

/// Why an approval was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("{0} does not hold the {1} role")]
    NotApprover(String, String),
    #[error("{0} admitted this release and cannot approve it (two-person rule)")]
    SelfApproval(String),
    #[error("{0} has already approved this release; another approver is needed")]
    Duplicate(String),
    #[error("the release has {0} scan finding(s): the approval must accept them explicitly")]
    FindingsNotAccepted(usize),
    #[error("the policy requires {0} approvals; fewer than 1 is not allowed")]
    BadPolicy(usize),
}

/// The approvals a release (or an export of it) has collected.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approvals {
    pub list: Vec<Approval>,
}

impl Approvals {
    /// Adds an approval if the rule allows it; returns whether the release is now
    /// approved.
    pub fn add(
        &mut self,
        policy: &Policy,
        admitted_by: &str,
        findings: usize,
        approver_roles: &[String],
        approval: Approval,
    ) -> Result<bool, ApprovalError> {
        if policy.required == 0 {
            return Err(ApprovalError::BadPolicy(policy.required));
        }
        if !approver_roles.iter().any(|r| r == &policy.role) {
            return Err(ApprovalError::NotApprover(
                approval.approver,
                policy.role.clone(),
            ));
        }
        if approval.approver == admitted_by {
            return Err(ApprovalError::SelfApproval(approval.approver));
        }
        if self.list.iter().any(|a| a.approver == approval.approver) {
            return Err(ApprovalError::Duplicate(approval.approver));
        }
        if findings > 0 && !approval.accepts_findings {
            return Err(ApprovalError::FindingsNotAccepted(findings));
        }
        self.list.push(approval);
        Ok(self.complete(policy))
    }

    /// Whether enough distinct approvals are in.
    pub fn complete(&self, policy: &Policy) -> bool {
        policy.required > 0 && self.list.len() >= policy.required
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(who: &str, accepts: bool) -> Approval {
        Approval {
            approver: who.into(),
            accepts_findings: accepts,
            time: "2026-11-22T08:00:00.000Z".into(),
        }
    }

    fn approver() -> Vec<String> {
        vec!["approver".into()]
    }

    #[test]
    fn two_distinct_approvers_other_than_the_admitter() {
        let policy = Policy::default();
        let mut a = Approvals::default();
        assert_eq!(
            a.add(&policy, "alice", 0, &approver(), approval("alice", false)),
            Err(ApprovalError::SelfApproval("alice".into()))
        );
        assert_eq!(
            a.add(&policy, "alice", 0, &approver(), approval("bob", false)),
            Ok(false)
        );
        assert_eq!(
            a.add(&policy, "alice", 0, &approver(), approval("bob", false)),
            Err(ApprovalError::Duplicate("bob".into()))
        );
        assert_eq!(
            a.add(
                &policy,
                "alice",
                0,
                &["viewer".into()],
                approval("carol", false)
            ),
            Err(ApprovalError::NotApprover(
                "carol".into(),
                "approver".into()
            ))
        );
        assert_eq!(
            a.add(&policy, "alice", 0, &approver(), approval("carol", false)),
            Ok(true)
        );
    }

    #[test]
    fn findings_must_be_accepted_explicitly() {
        let policy = Policy::default();
        let mut a = Approvals::default();
        assert_eq!(
            a.add(&policy, "alice", 3, &approver(), approval("bob", false)),
            Err(ApprovalError::FindingsNotAccepted(3))
        );
        assert_eq!(
            a.add(&policy, "alice", 3, &approver(), approval("bob", true)),
            Ok(false)
        );
    }

    #[test]
    fn a_policy_of_zero_approvals_is_refused() {
        let policy = Policy {
            required: 0,
            ..Policy::default()
        };
        let mut a = Approvals::default();
        assert!(a
            .add(&policy, "alice", 0, &approver(), approval("bob", false))
            .is_err());
        assert!(!a.complete(&policy));
    }
}
