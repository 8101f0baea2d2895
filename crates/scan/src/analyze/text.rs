//! Text and JSON analyzer (placeholder: plain text and JSON carry no code by themselves).

use crate::context::{Cx, Target};
use crate::rules::Rule;

pub static RULES: &[&Rule] = &[];

pub fn analyze_json(_cx: &mut Cx<'_>, _t: Target<'_>) {}

pub fn analyze_text(_cx: &mut Cx<'_>, _t: Target<'_>) {}
