//! The system calls and ioctls of write tracking, and the only `unsafe` code of this crate.
//!
//! Each function wraps one call with a safe signature: file descriptors are borrowed or owned
//! (`BorrowedFd`/`OwnedFd`), argument structs are built here from plain values, and results
//! come back as `io::Result`. Syscall numbers and flags come from the `libc` crate; what it
//! lacks (the userfaultfd and `PAGEMAP_SCAN` structs and constants) is declared below with
//! `#[repr(C)]`, copied by field from the kernel's uapi headers
//! (`include/uapi/linux/userfaultfd.h`, `include/uapi/linux/fs.h`, Linux 6.7 and later) and
//! checked by the size assertions and tests at the end of this file.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// `UFFD_API`: the only userfaultfd API version.
pub const UFFD_API: u64 = 0xAA;
/// `UFFD_USER_MODE_ONLY`: a userfaultfd that handles user-mode faults only (allowed without
/// privileges when `vm.unprivileged_userfaultfd` is 0).
pub const UFFD_USER_MODE_ONLY: libc::c_int = 1;
/// `UFFD_FEATURE_WP_UNPOPULATED`: write-protecting also covers pages not populated yet.
pub const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
/// `UFFD_FEATURE_WP_ASYNC`: write-protect faults are resolved by the kernel, which only
/// clears the page's protection (what `PAGEMAP_SCAN` then reports as written).
pub const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
/// `UFFDIO_REGISTER_MODE_WP`: track writes to the registered range.
pub const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;

/// `PAGE_IS_WRITTEN`: written since it was last write-protected.
pub const PAGE_IS_WRITTEN: u64 = 1 << 1;
/// `PAGE_IS_PRESENT`: in RAM.
pub const PAGE_IS_PRESENT: u64 = 1 << 3;
/// `PAGE_IS_SWAPPED`: a swap entry (swapped out, or a write-protect marker on a page that is
/// not populated).
pub const PAGE_IS_SWAPPED: u64 = 1 << 4;
/// `PM_SCAN_WP_MATCHING`: write-protect the pages that match.
pub const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
/// `PM_SCAN_CHECK_WPASYNC`: fail with `EPERM` on memory not registered for async
/// write-protection (instead of silently skipping it).
pub const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;

/// `struct uffdio_api`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

/// `struct uffdio_range`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct UffdioRange {
    start: u64,
    len: u64,
}

/// `struct uffdio_register`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}

/// `struct page_region`: a run of pages `[start, end)` (addresses) sharing `categories`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PageRegion {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// `PAGE_IS_*` bits (those asked for in the return mask).
    pub categories: u64,
}

/// `struct pm_scan_arg`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

const _: () = assert!(size_of::<UffdioApi>() == 24);
const _: () = assert!(size_of::<UffdioRange>() == 16);
const _: () = assert!(size_of::<UffdioRegister>() == 32);
const _: () = assert!(size_of::<PageRegion>() == 24);
const _: () = assert!(size_of::<PmScanArg>() == 96);

/// `_IOWR(kind, nr, size)` of the kernel's generic ioctl encoding (x86, arm, riscv, ...).
const fn iowr(kind: u8, nr: u8, size: usize) -> u64 {
    const READ_WRITE: u64 = 3;
    (READ_WRITE << 30) | ((size as u64) << 16) | ((kind as u64) << 8) | nr as u64
}

/// `UFFDIO_API`.
const UFFDIO_API: u64 = iowr(0xAA, 0x3F, size_of::<UffdioApi>());
/// `UFFDIO_REGISTER`.
const UFFDIO_REGISTER: u64 = iowr(0xAA, 0x00, size_of::<UffdioRegister>());
/// `PAGEMAP_SCAN`.
const PAGEMAP_SCAN: u64 = iowr(b'f', 16, size_of::<PmScanArg>());

/// A raw return value as `io::Result`: negative means `errno`.
fn check(result: libc::c_long) -> io::Result<libc::c_long> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// An fd returned by a syscall, owned from now on.
fn owned(result: libc::c_long) -> io::Result<OwnedFd> {
    let fd = RawFd::try_from(check(result)?).map_err(|_| io::Error::other("fd out of range"))?;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_open(pid, 0)`: a descriptor for the process `pid`.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: pidfd_open takes two integers and touches no memory of ours.
    owned(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })
}

/// `pidfd_getfd(pidfd, fd, 0)`: a duplicate, in this process, of descriptor `fd` of the
/// process behind `pidfd` (needs ptrace access to it).
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_getfd takes three integers and touches no memory of ours; `pidfd` is a
    // valid open descriptor for the duration of the call.
    owned(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) })
}

/// `userfaultfd(O_CLOEXEC | O_NONBLOCK | extra)`: a userfaultfd for this process's memory.
pub fn userfaultfd(extra_flags: libc::c_int) -> io::Result<OwnedFd> {
    let flags = libc::O_CLOEXEC | libc::O_NONBLOCK | extra_flags;
    // SAFETY: userfaultfd takes one integer and touches no memory of ours.
    owned(unsafe { libc::syscall(libc::SYS_userfaultfd, flags) })
}

/// `UFFDIO_API` asking for `features`; returns the features the kernel supports.
pub fn uffdio_api(uffd: BorrowedFd<'_>, features: u64) -> io::Result<u64> {
    let mut api = UffdioApi {
        api: UFFD_API,
        features,
        ioctls: 0,
    };
    // SAFETY: `api` is a live, correctly laid out `struct uffdio_api` that the kernel reads
    // and writes only within its 24 bytes; `uffd` is open for the call.
    check(unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_API as _, &mut api) }.into())?;
    Ok(api.features)
}

/// `UFFDIO_REGISTER` of `[start, start + len)` (addresses in the userfaultfd's process) in
/// write-protect mode.
pub fn uffdio_register_wp(uffd: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<()> {
    let mut register = UffdioRegister {
        range: UffdioRange { start, len },
        mode: UFFDIO_REGISTER_MODE_WP,
        ioctls: 0,
    };
    // SAFETY: `register` is a live, correctly laid out `struct uffdio_register` that the
    // kernel reads and writes only within its 32 bytes; `uffd` is open for the call.
    check(unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_REGISTER as _, &mut register) }.into())?;
    Ok(())
}

/// One `PAGEMAP_SCAN` request over `[start, end)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanRequest {
    /// `PM_SCAN_*` flags.
    pub flags: u64,
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Categories whose meaning is inverted (match when the bit is clear).
    pub category_inverted: u64,
    /// Categories that must all match.
    pub category_mask: u64,
    /// Categories reported in each region.
    pub return_mask: u64,
}

/// `PAGEMAP_SCAN` on an open `/proc/PID/pagemap`: fills `out` (up to its capacity, at least
/// one region) with the matching regions from `request.start` and returns the address where
/// the walk stopped (`request.end` when the whole range was walked).
pub fn pagemap_scan(
    pagemap: BorrowedFd<'_>,
    request: &ScanRequest,
    out: &mut Vec<PageRegion>,
) -> io::Result<u64> {
    out.clear();
    out.reserve(1);
    let mut arg = PmScanArg {
        size: size_of::<PmScanArg>() as u64,
        flags: request.flags,
        start: request.start,
        end: request.end,
        walk_end: 0,
        vec: out.as_mut_ptr() as u64,
        vec_len: out.capacity() as u64,
        max_pages: 0,
        category_inverted: request.category_inverted,
        category_mask: request.category_mask,
        category_anyof_mask: 0,
        return_mask: request.return_mask,
    };
    // SAFETY: `arg` is a live `struct pm_scan_arg`; its `vec` points to `out`'s buffer of
    // `vec_len` uninitialised `struct page_region`s, which the kernel writes only within
    // that length and reports how many it wrote; `pagemap` is open for the call.
    let filled =
        check(unsafe { libc::ioctl(pagemap.as_raw_fd(), PAGEMAP_SCAN as _, &mut arg) }.into())?;
    let filled = usize::try_from(filled).unwrap_or(usize::MAX);
    if filled > out.capacity() {
        return Err(io::Error::other(
            "PAGEMAP_SCAN reported more regions than asked for",
        ));
    }
    // SAFETY: the kernel initialised the first `filled` regions (checked against capacity).
    unsafe { out.set_len(filled) };
    Ok(arg.walk_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_kernel_headers() {
        // UFFDIO_API and UFFDIO_REGISTER as a C program including <linux/userfaultfd.h>
        // prints them on x86-64; PAGEMAP_SCAN is `_IOWR('f', 16, struct pm_scan_arg)` of
        // the 96-byte struct (Linux 6.7 and later).
        assert_eq!(UFFDIO_API, 0xc018_aa3f);
        assert_eq!(UFFDIO_REGISTER, 0xc020_aa00);
        assert_eq!(PAGEMAP_SCAN, 0xc060_6610);
    }

    #[test]
    fn field_offsets_match_the_kernel_structs() {
        assert_eq!(std::mem::offset_of!(UffdioRegister, mode), 16);
        assert_eq!(std::mem::offset_of!(PmScanArg, walk_end), 32);
        assert_eq!(std::mem::offset_of!(PmScanArg, vec), 40);
        assert_eq!(std::mem::offset_of!(PmScanArg, category_inverted), 64);
        assert_eq!(std::mem::offset_of!(PmScanArg, return_mask), 88);
        assert_eq!(std::mem::offset_of!(PageRegion, categories), 16);
    }
}
