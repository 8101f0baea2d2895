//! onnx analyzer (not yet written: everything it is given is reported as not inspected).

use crate::rules::Rule;

pub static RULES: &[&Rule] = &[];
