//! Small file-system helpers: atomic replacement, bounded reads, directory syncs.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// Replaces `path` with `data` atomically (write a sibling, then rename over), so a reader
/// sees the old file or the new one, never a mix. With `durable`, the data and the rename
/// are synced before this returns.
pub(crate) fn write_atomic(path: &Path, data: &[u8], durable: bool) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(Error::io(parent))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    let mut file = File::create(tmp).map_err(Error::io(tmp))?;
    file.write_all(data).map_err(Error::io(tmp))?;
    if durable {
        file.sync_data().map_err(Error::io(tmp))?;
    }
    drop(file);
    fs::rename(tmp, path).map_err(Error::io(path))?;
    if durable {
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Makes a directory's entries (new names, renames) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}

/// Reads a whole file, refusing one larger than `max` bytes.
pub(crate) fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(Error::io(path))?;
    let mut data = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut data)
        .map_err(Error::io(path))?;
    if data.len() as u64 > max {
        return Err(Error::Corrupt(format!(
            "{} is larger than {max} bytes",
            path.display()
        )));
    }
    Ok(data)
}

/// Reads a file if it exists.
pub(crate) fn read_optional(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    match read_limited(path, max) {
        Ok(data) => Ok(Some(data)),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
