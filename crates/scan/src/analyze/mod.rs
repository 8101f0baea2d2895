//! One analyzer per format. Each turns a reader's description of the bytes into findings,
//! and declares its rules in a `RULES` table.

use formats::Format;

use crate::context::{Cx, Target};
use crate::rules::Rule;

pub mod archive;
pub mod generic;
pub mod gguf;
pub mod hdf5;
pub mod keras;
pub mod numpy;
pub mod onnx;
pub mod pickle;
pub mod protobuf;
pub mod safetensors;
pub mod template;
pub mod text;

/// Every analyzer's rule table; see [`crate::rules::all`].
pub static RULE_SETS: &[&[&Rule]] = &[
    generic::RULES,
    pickle::RULES,
    archive::RULES,
    numpy::RULES,
    safetensors::RULES,
    gguf::RULES,
    onnx::RULES,
    protobuf::RULES,
    keras::RULES,
    hdf5::RULES,
    text::RULES,
    template::RULES,
];

/// Detects the target's format by content and runs its analyzer.
pub fn dispatch(cx: &mut Cx<'_>, t: Target<'_>) {
    let format = formats::detect(t.data);
    dispatch_as(cx, format, t);
}

/// Runs the analyzer for `format`.
pub fn dispatch_as(cx: &mut Cx<'_>, format: Format, t: Target<'_>) {
    cx.saw_format(format.name());
    match format {
        Format::Pickle => pickle::analyze(cx, t),
        Format::Zip => archive::analyze_zip(cx, t),
        Format::Tar => archive::analyze_tar(cx, t),
        Format::Gzip => archive::analyze_gzip(cx, t),
        Format::Zlib => archive::analyze_zlib(cx, t),
        Format::OpaqueCompressed(kind) => generic::opaque_compressed(cx, t, kind),
        Format::Npy => numpy::analyze(cx, t),
        Format::Safetensors => safetensors::analyze(cx, t),
        Format::Gguf => gguf::analyze(cx, t),
        Format::Hdf5 => hdf5::analyze(cx, t),
        Format::Protobuf => protobuf::analyze(cx, t),
        Format::Json => text::analyze_json(cx, t),
        Format::Text => text::analyze_text(cx, t),
        Format::Unknown => generic::unknown(cx, t),
    }
    // A format read from the front with a zip archive appended: `zipfile` finds the
    // archive from the end while the format's own loader reads from the front. Both
    // readings are scanned, and the archive reports the leading bytes as a prefix.
    // (Containers scan their members anyway; safetensors and NumPy scan their own
    // trailing bytes.)
    let front_read = matches!(
        format,
        Format::Pickle | Format::Gguf | Format::Hdf5 | Format::Protobuf
    );
    if front_read && is_zip_polyglot(cx, t.data) {
        archive::analyze_zip(cx, t);
    }
}

/// True when the data, read as something else, also holds a zip archive with members.
fn is_zip_polyglot(cx: &Cx<'_>, data: &[u8]) -> bool {
    formats::zip::has_end_of_central_directory(data)
        && formats::zip::read(data, cx.limits)
            .central
            .is_ok_and(|c| !c.entries.is_empty())
}
