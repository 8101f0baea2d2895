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

impl Limits {
    /// Every limit's name, as accepted by [`Limits::set`].
    pub const NAMES: [&'static str; 12] = [
        "max_header_bytes",
        "max_pickle_ops",
        "max_pickle_values",
        "max_pickle_depth",
        "max_archive_members",
        "max_inflated_bytes",
        "max_compression_ratio",
        "max_nesting_depth",
        "max_entries",
        "max_string_bytes",
        "max_tensor_elements",
        "max_json_depth",
    ];

    /// The value of the limit called `name`.
    pub fn get(&self, name: &str) -> Option<u64> {
        Some(match name {
            "max_header_bytes" => self.max_header_bytes,
            "max_pickle_ops" => self.max_pickle_ops,
            "max_pickle_values" => self.max_pickle_values,
            "max_pickle_depth" => u64::from(self.max_pickle_depth),
            "max_archive_members" => self.max_archive_members,
            "max_inflated_bytes" => self.max_inflated_bytes,
            "max_compression_ratio" => self.max_compression_ratio,
            "max_nesting_depth" => u64::from(self.max_nesting_depth),
            "max_entries" => self.max_entries,
            "max_string_bytes" => self.max_string_bytes,
            "max_tensor_elements" => self.max_tensor_elements,
            "max_json_depth" => u64::from(self.max_json_depth),
            _ => return None,
        })
    }

    /// Sets the limit called `name` (a field name above) to `value`.
    pub fn set(&mut self, name: &str, value: u64) -> Result<(), String> {
        let narrow =
            |v: u64| u32::try_from(v).map_err(|_| format!("{name} must be at most {}", u32::MAX));
        match name {
            "max_header_bytes" => self.max_header_bytes = value,
            "max_pickle_ops" => self.max_pickle_ops = value,
            "max_pickle_values" => self.max_pickle_values = value,
            "max_pickle_depth" => self.max_pickle_depth = narrow(value)?,
            "max_archive_members" => self.max_archive_members = value,
            "max_inflated_bytes" => self.max_inflated_bytes = value,
            "max_compression_ratio" => self.max_compression_ratio = value,
            "max_nesting_depth" => self.max_nesting_depth = narrow(value)?,
            "max_entries" => self.max_entries = value,
            "max_string_bytes" => self.max_string_bytes = value,
            "max_tensor_elements" => self.max_tensor_elements = value,
            "max_json_depth" => self.max_json_depth = narrow(value)?,
            _ => {
                return Err(format!(
                    "unknown limit `{name}`; known limits: {}",
                    Self::NAMES.join(", ")
                ))
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_limit_can_be_set() {
        for name in Limits::NAMES {
            let mut l = Limits::default();
            l.set(name, 7).unwrap();
        }
        let mut l = Limits::default();
        assert!(l
            .set("max_nonsense", 1)
            .unwrap_err()
            .contains("unknown limit"));
        assert!(l.set("max_nesting_depth", u64::MAX).is_err());
        l.set("max_inflated_bytes", 42).unwrap();
        assert_eq!(l.max_inflated_bytes, 42);
        for name in Limits::NAMES {
            l.set(name, 9).unwrap();
            assert_eq!(l.get(name), Some(9), "{name}");
        }
        assert_eq!(l.get("nope"), None);
    }
}
