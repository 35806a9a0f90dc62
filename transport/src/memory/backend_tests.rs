//! The tests every file-backed guest memory passes, written once over [`FileBacked`];
//! [`file_backed_tests!`] runs them all for one backend.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use pagewire_codec::memory::{DestinationMemory, MemoryError, SourceMemory};
use pagewire_codec::{PageCount, PageNumber, PageSize};

use super::FileMemoryError;

/// A guest memory in a file, as the shared tests make and reopen it.
pub(super) trait FileBacked: SourceMemory + DestinationMemory + Sized {
    /// Names the backend's scratch files.
    const NAME: &str;
    /// Creates an all-zero memory in a new file.
    fn create(path: &Path, page_size: PageSize, count: PageCount) -> Result<Self, FileMemoryError>;
    /// Opens an existing image, whose pages written reach the file.
    fn open(path: &Path, page_size: PageSize) -> Result<Self, FileMemoryError>;
    /// Puts the pages written into the file.
    fn sync(&self) -> std::io::Result<()>;
}

/// A scratch file for one test of backend `M`.
pub(super) fn scratch<M: FileBacked>(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pagewire-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{}-{test}", M::NAME))
}

/// Reads `page` through the source side.
pub(super) fn page_of(memory: &impl SourceMemory, page: PageNumber) -> Vec<u8> {
    let mut out = vec![0xa5; memory.page_size().bytes()];
    memory.read_page(page, &mut out).unwrap();
    out
}

pub(super) fn pages_written_are_read_back_and_survive_reopening<M: FileBacked>() {
    let path = scratch::<M>("roundtrip");
    let mut memory = M::create(&path, PageSize::KIB_4, PageCount(3)).unwrap();
    memory.write_page(PageNumber(2), &[5u8; 4096]).unwrap();
    let mut page = [0u8; 4096];
    DestinationMemory::read_page(&memory, PageNumber(2), &mut page).unwrap();
    assert_eq!(page, [5u8; 4096]);
    memory.sync().unwrap();
    drop(memory);
    let memory = M::open(&path, PageSize::KIB_4).unwrap();
    assert_eq!(SourceMemory::page_count(&memory), PageCount(3));
    assert_eq!(SourceMemory::page_size(&memory), PageSize::KIB_4);
    assert_eq!(page_of(&memory, PageNumber(0)), [0u8; 4096]);
    assert_eq!(page_of(&memory, PageNumber(2)), [5u8; 4096]);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 * 4096);
    std::fs::remove_file(path).unwrap();
}

pub(super) fn pages_outside_and_buffers_of_the_wrong_length_are_refused<M: FileBacked>() {
    let path = scratch::<M>("bounds");
    let mut memory = M::create(&path, PageSize::KIB_4, PageCount(2)).unwrap();
    let mut page = vec![0u8; 4096];
    assert!(matches!(
        SourceMemory::read_page(&memory, PageNumber(2), &mut page),
        Err(MemoryError::PageOutOfRange {
            page: PageNumber(2),
            page_count: PageCount(2)
        })
    ));
    assert!(matches!(
        memory.write_page(PageNumber(u64::MAX), &page),
        Err(MemoryError::PageOutOfRange { .. })
    ));
    assert!(matches!(
        memory.write_page(PageNumber(0), &page[..10]),
        Err(MemoryError::WrongLength {
            expected: 4096,
            actual: 10
        })
    ));
    std::fs::remove_file(path).unwrap();
}

pub(super) fn a_file_of_partial_pages_and_an_oversized_memory_are_refused<M: FileBacked>() {
    let path = scratch::<M>("partial");
    std::fs::write(&path, vec![0u8; 4097]).unwrap();
    assert!(matches!(
        M::open(&path, PageSize::KIB_4),
        Err(FileMemoryError::NotWholePages { length: 4097, .. })
    ));
    assert!(matches!(
        M::create(&path, PageSize::MIB_2, PageCount(u64::MAX / 4096)),
        Err(FileMemoryError::TooLarge { .. })
    ));
    std::fs::remove_file(path).unwrap();
}

/// The memory is the file: a page another process writes to the file is what the next read
/// copies out (the source then sends it, as it would a page the guest wrote).
pub(super) fn reads_see_what_another_handle_wrote_to_the_file<M: FileBacked>() {
    let path = scratch::<M>("coherent");
    let memory = M::create(&path, PageSize::KIB_4, PageCount(2)).unwrap();
    assert_eq!(page_of(&memory, PageNumber(1)), [0u8; 4096]);
    let other = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    other.write_all_at(&[7u8; 4096], 4096).unwrap();
    assert_eq!(page_of(&memory, PageNumber(1)), [7u8; 4096]);
    assert_eq!(page_of(&memory, PageNumber(0)), [0u8; 4096]);
    std::fs::remove_file(path).unwrap();
}

/// Implements [`FileBacked`] for `$memory` (from its inherent `create`, `open` and `sync`) and
/// runs every shared test on it.
macro_rules! file_backed_tests {
    ($memory:ident) => {
        impl $crate::memory::backend_tests::FileBacked for $memory {
            const NAME: &str = stringify!($memory);

            fn create(
                path: &std::path::Path,
                page_size: pagewire_codec::PageSize,
                count: pagewire_codec::PageCount,
            ) -> Result<Self, $crate::memory::FileMemoryError> {
                $memory::create(path, page_size, count)
            }

            fn open(
                path: &std::path::Path,
                page_size: pagewire_codec::PageSize,
            ) -> Result<Self, $crate::memory::FileMemoryError> {
                $memory::open(path, page_size)
            }

            fn sync(&self) -> std::io::Result<()> {
                $memory::sync(self)
            }
        }

        #[test]
        fn pages_written_are_read_back_from_the_file_and_survive_reopening() {
            $crate::memory::backend_tests::pages_written_are_read_back_and_survive_reopening::<
                $memory,
            >();
        }

        #[test]
        fn pages_outside_and_buffers_of_the_wrong_length_are_refused() {
            $crate::memory::backend_tests::pages_outside_and_buffers_of_the_wrong_length_are_refused::<
                $memory,
            >();
        }

        #[test]
        fn a_file_of_partial_pages_and_an_oversized_memory_are_refused() {
            $crate::memory::backend_tests::a_file_of_partial_pages_and_an_oversized_memory_are_refused::<
                $memory,
            >();
        }

        #[test]
        fn reads_see_what_another_handle_wrote_to_the_file() {
            $crate::memory::backend_tests::reads_see_what_another_handle_wrote_to_the_file::<
                $memory,
            >();
        }
    };
}

pub(super) use file_backed_tests;
