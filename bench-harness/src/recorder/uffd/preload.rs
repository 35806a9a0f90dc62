//! The preload library (`bench-harness/preload/uffd_preload.c`, compiled by `build.rs` and
//! embedded in this crate): written to a private directory so a target can load it with
//! `LD_PRELOAD`.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The compiled library (empty when the crate was built for another OS than Linux).
const LIBRARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libpagewire_uffd_preload.so"));

/// File name of the library.
pub const LIBRARY_NAME: &str = "libpagewire_uffd_preload.so";

/// Attempts at finding an unused directory name.
const NAME_ATTEMPTS: u32 = 16;

/// Writes the library to `path` (created or replaced, mode 0644).
pub fn write_library(path: &Path) -> io::Result<()> {
    if LIBRARY.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the uffd preload library was not built (it exists for Linux only)",
        ));
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)?;
    io::Write::write_all(&mut file, LIBRARY)?;
    file.sync_all()
}

/// The library installed in a new private directory (mode 0700, so nobody else can replace
/// it before the target loads it); the directory is removed when this is dropped.
#[derive(Debug)]
pub struct PreloadLibrary {
    dir: PathBuf,
    path: PathBuf,
}

impl PreloadLibrary {
    /// Installs the library under the system's temporary directory.
    pub fn install() -> io::Result<Self> {
        let base = std::env::temp_dir();
        let mut last_error = None;
        for attempt in 0..NAME_ATTEMPTS {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(attempt);
            let dir = base.join(format!(
                "pagewire-uffd-{}-{nanos:08x}-{attempt}",
                std::process::id()
            ));
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    let library = Self {
                        path: dir.join(LIBRARY_NAME),
                        dir,
                    };
                    write_library(&library.path)?;
                    return Ok(library);
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no free directory name")))
    }

    /// Where the library is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value of `LD_PRELOAD` for a target: this library, then whatever the recorder's
    /// own environment preloads.
    pub fn ld_preload(&self) -> OsString {
        let mut value = self.path.as_os_str().to_owned();
        if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
            value.push(":");
            value.push(existing);
        }
        value
    }
}

impl Drop for PreloadLibrary {
    fn drop(&mut self) {
        // A target still running has the library mapped; removing the file does not affect it.
        let _ = fs::remove_dir_all(&self.dir);
    }
}
