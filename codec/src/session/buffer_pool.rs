//! [`BufferPool`]: buffers an [`Outbox`](super::outbox::Outbox) encodes frames into, back for
//! reuse once the transport has dropped every chunk it took from them.
//!
//! Memory the process has not touched yet costs a page fault and the clearing of the page
//! when it is first written (microseconds per 4 KiB page on a virtual machine: as much as
//! moving the page). A fresh allocation per frame, freed when QUIC has its bytes
//! acknowledged, keeps the allocator handing back memory the kernel must back again; a
//! buffer that returns here is written again without faults.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// How many buffers a pool keeps for reuse; more are freed when they return. About as many as
/// a page stream has in flight (the transport's queue and QUIC's send window, a few MiB per
/// buffer), so a pool holds at most a few tens of MiB when the migration is over.
const MAX_POOLED: usize = 8;

/// Buffers back from the transport, for reuse. Shared by its outbox and the chunks it handed
/// out (the last chunk of a buffer to be dropped, on whatever thread, returns the buffer).
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// An empty buffer, with the capacity of one that came back if any.
    pub(crate) fn get(&self) -> Vec<u8> {
        self.free
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default()
    }

    /// `buffer`'s bytes as one [`Bytes`]; the buffer comes back to `pool` when the last slice of
    /// it is dropped.
    pub(crate) fn freeze(pool: &Arc<BufferPool>, buffer: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buffer,
            pool: Arc::clone(pool),
        })
    }

    fn put(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        // A poisoned lock (a panic elsewhere while holding it) only costs the reuse.
        if let Ok(mut free) = self.free.lock()
            && free.len() < MAX_POOLED
        {
            free.push(buffer);
        }
    }

    /// How many buffers wait for reuse.
    #[cfg(test)]
    fn pooled(&self) -> usize {
        self.free.lock().map(|free| free.len()).unwrap_or(0)
    }
}

/// A buffer lent out as [`Bytes`].
struct Pooled {
    buffer: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_returns_when_its_last_slice_is_dropped() {
        let pool = Arc::new(BufferPool::default());
        let mut buffer = pool.get();
        buffer.extend_from_slice(&[7; 1000]);
        let capacity = buffer.capacity();
        let mut bytes = BufferPool::freeze(&pool, buffer);
        let front = bytes.split_to(600);
        assert_eq!((front.len(), bytes.len()), (600, 400));
        drop(front);
        assert_eq!(pool.pooled(), 0, "a slice is still out");
        drop(bytes);
        assert_eq!(pool.pooled(), 1);
        let again = pool.get();
        assert!(again.is_empty());
        assert_eq!(again.capacity(), capacity);
    }

    #[test]
    fn the_pool_keeps_a_bounded_number_of_buffers() {
        let pool = Arc::new(BufferPool::default());
        let out: Vec<Bytes> = (0..MAX_POOLED + 3)
            .map(|_| BufferPool::freeze(&pool, vec![1; 10]))
            .collect();
        drop(out);
        assert_eq!(pool.pooled(), MAX_POOLED);
    }
}
