//! Finding, among a process's open descriptors, the userfaultfd that the preload library
//! created: linked to `anon_inode:[userfaultfd]`, with the async write-protect feature in its
//! `/proc/PID/fdinfo` entry.

use std::fs;
use std::io;
use std::os::fd::RawFd;

use super::sys::UFFD_FEATURE_WP_ASYNC;
use crate::recorder::ProcessId;

/// What `/proc/PID/fd/N` links to for a userfaultfd.
const UFFD_LINK: &str = "anon_inode:[userfaultfd]";

/// The features of a userfaultfd from its fdinfo text: the middle field of the
/// `API:\t<api>:<features>:<ioctls>` line (hex).
pub fn features_from_fdinfo(fdinfo: &str) -> Option<u64> {
    let api = fdinfo.lines().find_map(|line| line.strip_prefix("API:"))?;
    let mut fields = api.trim().split(':');
    let _version = fields.next()?;
    u64::from_str_radix(fields.next()?, 16).ok()
}

/// The lowest descriptor of `pid` that is a userfaultfd in async write-protect mode, if any.
pub fn find_wp_async_uffd(pid: ProcessId) -> io::Result<Option<RawFd>> {
    let mut found = None;
    for entry in fs::read_dir(pid.proc_path("fd"))? {
        let entry = entry?;
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<RawFd>().ok())
        else {
            continue;
        };
        // A descriptor closed since the directory was listed is simply not a candidate.
        let Ok(link) = fs::read_link(entry.path()) else {
            continue;
        };
        if link.as_os_str() != UFFD_LINK {
            continue;
        }
        let Ok(fdinfo) = fs::read_to_string(pid.proc_path(&format!("fdinfo/{fd}"))) else {
            continue;
        };
        let wp_async = features_from_fdinfo(&fdinfo)
            .is_some_and(|features| features & UFFD_FEATURE_WP_ASYNC != 0);
        if wp_async && found.is_none_or(|lowest| fd < lowest) {
            found = Some(fd);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_features_of_an_fdinfo_entry() {
        let fdinfo = "pos:\t0\nflags:\t02004000\nmnt_id:\t17\nino:\t211283\npending:\t0\n\
                      total:\t0\nAPI:\taa:8000a000:80000000000001ff\n";
        assert_eq!(features_from_fdinfo(fdinfo), Some(0x8000_a000));
        assert_eq!(features_from_fdinfo("pos:\t0\n"), None);
        assert_eq!(features_from_fdinfo("API:\taa:zz:1\n"), None);
    }
}
