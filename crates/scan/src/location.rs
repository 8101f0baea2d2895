//! Where a finding is: the file on disk, the chain of archive members inside it, a byte
//! offset in the innermost one, and the named object (tensor, node, layer, global).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// The file on disk.
    pub path: Arc<PathBuf>,
    /// Archive members from the outermost inwards, e.g. `["model.npz", "w.npy"]`.
    pub members: Vec<String>,
    /// Byte offset within the innermost member (or the file when `members` is empty).
    pub offset: Option<u64>,
    /// A named object inside the data: tensor, graph node, layer, pickle global.
    pub object: Option<String>,
}

impl Location {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Arc::new(path.into()),
            ..Self::default()
        }
    }

    /// A member nested inside this location. Offset and object are reset.
    pub fn member(&self, name: impl Into<String>) -> Self {
        let mut members = self.members.clone();
        members.push(name.into());
        Self {
            path: Arc::clone(&self.path),
            members,
            offset: None,
            object: None,
        }
    }

    /// This location at a byte offset.
    pub fn at(&self, offset: u64) -> Self {
        Self {
            offset: Some(offset),
            ..self.clone()
        }
    }

    /// This location, naming an object inside it.
    pub fn object(&self, name: impl Into<String>) -> Self {
        Self {
            object: Some(name.into()),
            ..self.clone()
        }
    }

    /// `path!member!member`, the archive chain without offset or object.
    pub fn artifact(&self) -> String {
        let mut s = self.path.display().to_string();
        for m in &self.members {
            s.push('!');
            s.push_str(m);
        }
        s
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.artifact())?;
        if let Some(off) = self.offset {
            write!(f, " @ byte {off}")?;
        }
        if let Some(obj) = &self.object {
            write!(f, " ({obj})")?;
        }
        Ok(())
    }
}
