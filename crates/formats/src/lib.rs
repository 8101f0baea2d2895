//! Bounded, panic-free readers for the file formats that carry machine-learning models.
//!
//! Every reader here works over bytes that may be hostile. Each one:
//! - takes a byte slice (or a bounded `Read`) and a [`Limits`],
//! - never panics, never allocates beyond its limits, never loops without consuming input,
//! - returns a typed description of what the file contains, or a [`ParseError`] that names
//!   the byte offset and what was wrong.
//!
//! Readers describe; they do not judge. Deciding whether a pickle's imports or an ONNX
//! file's external-data paths are dangerous is the job of the `scan` crate.
#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::arithmetic_side_effects))]

pub mod detect;
pub mod error;
pub mod limits;
#[doc(hidden)]
pub mod mutate;
pub mod reader;

pub mod gguf;
pub mod hdf5;
pub mod keras;
pub mod numpy;
pub mod onnx;
pub mod pickle;
pub mod safetensors;
pub mod tar;
pub mod tfproto;
pub mod zip;

pub use detect::{detect, Format};
pub use error::{ParseError, ParseErrorKind};
pub use limits::Limits;
