//! archive analyzer (not yet written: everything it is given is reported as not inspected).

use crate::context::{Cx, Target};
use crate::rules::Rule;

pub static RULES: &[&Rule] = &[];

pub fn analyze_zip(cx: &mut Cx<'_>, t: Target<'_>) {
    super::generic::unknown(cx, t);
}

pub fn analyze_tar(cx: &mut Cx<'_>, t: Target<'_>) {
    super::generic::unknown(cx, t);
}

pub fn analyze_gzip(cx: &mut Cx<'_>, t: Target<'_>) {
    super::generic::unknown(cx, t);
}

pub fn analyze_zlib(cx: &mut Cx<'_>, t: Target<'_>) {
    super::generic::unknown(cx, t);
}
