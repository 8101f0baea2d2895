//! What the operator trusts beyond Warden's built-in allow-lists.

use std::collections::BTreeSet;

#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Extra pickle globals (`module.qualname`) the operator declares safe, on top of the
    /// built-in allow-list. A global on the built-in deny-list stays a finding regardless.
    pub allow_globals: BTreeSet<String>,
}
