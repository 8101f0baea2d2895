//! Explicit bounds on what any reader may spend on one input.

/// Bounds shared by all readers. The defaults admit every real model we know of while
/// keeping a hostile file from costing more than a few hundred MiB or a few seconds.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest JSON or text header read into memory (safetensors header, Keras config,
    /// HDF5 model config, NumPy header). safetensors itself caps headers at 100 MB.
    pub max_header_bytes: u64,
    /// Most pickle opcodes executed in one pickle stream.
    pub max_pickle_ops: u64,
    /// Most values alive on a pickle's stack, memo and metastack together.
    pub max_pickle_values: u64,
    /// Deepest nesting of pickle containers (tuples in lists in dicts ...).
    pub max_pickle_depth: u32,
    /// Most members read from one archive (zip, tar).
    pub max_archive_members: u64,
    /// Most bytes inflated from one compressed member or stream.
    pub max_inflated_bytes: u64,
    /// Largest ratio of inflated to compressed size tolerated before a member is called a
    /// compression bomb.
    pub max_compression_ratio: u64,
    /// Deepest nesting of containers (a zip in a tar in a gzip ...).
    pub max_nesting_depth: u32,
    /// Most entries in a GGUF metadata table or tensor table, ONNX graph, SavedModel graph.
    pub max_entries: u64,
    /// Longest string in a binary header (GGUF keys and values, ONNX names).
    pub max_string_bytes: u64,
    /// Most elements in one tensor (a dimension product beyond this is absurd).
    pub max_tensor_elements: u64,
    /// Deepest JSON nesting accepted.
    pub max_json_depth: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 100_000_000,
            max_pickle_ops: 50_000_000,
            max_pickle_values: 10_000_000,
            max_pickle_depth: 256,
            max_archive_members: 100_000,
            max_inflated_bytes: 4 << 30,
            max_compression_ratio: 1_000,
            max_nesting_depth: 8,
            max_entries: 1_000_000,
            max_string_bytes: 64 << 20,
            max_tensor_elements: 1 << 40,
            max_json_depth: 128,
        }
    }
}
