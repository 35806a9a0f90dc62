//! A destination session fed random or mutated bytes on any stream never panics, and never
//! runs a VM whose memory differs from the source's.

mod session_support;

use std::time::Duration;

use bytes::Bytes;
use pagewire_codec::InMemory;
use pagewire_codec::session::{DestinationSession, StreamId};
use proptest::prelude::*;
use session_support::{PAGE_SIZE, Pair, PairConfig, destination_config};

/// What a real source sent in one small migration, chunk by chunk, and its final memory.
struct Recorded {
    chunks: Vec<(StreamId, Bytes)>,
    memory: InMemory,
}

fn recorded() -> &'static Recorded {
    static RECORDED: std::sync::OnceLock<Recorded> = std::sync::OnceLock::new();
    RECORDED.get_or_init(|| {
        let mut config = PairConfig::new("precopy:max-rounds=2", 2);
        config.writes_per_step = 1;
        let mut pair = Pair::new(config);
        pair.run();
        assert!(pair.destination.activated());
        Recorded {
            chunks: pair.transcript,
            memory: pair.source.memory().clone(),
        }
    })
}

fn transcript() -> Vec<(StreamId, Vec<u8>)> {
    recorded()
        .chunks
        .iter()
        .map(|(s, b)| (*s, b.to_vec()))
        .collect()
}

/// Feeds `chunks` to a fresh destination; returns the memory if it ran the VM.
fn feed(chunks: &[(StreamId, Vec<u8>)]) -> Option<InMemory> {
    let memory = InMemory::new(PAGE_SIZE, session_support::PAGE_COUNT).unwrap();
    let mut destination =
        DestinationSession::new(destination_config(), memory, Duration::ZERO).unwrap();
    for (index, (stream, bytes)) in chunks.iter().enumerate() {
        let now = Duration::from_millis(index as u64);
        if destination.handle_stream_data(now, *stream, bytes).is_err() {
            assert!(!destination.activated());
        }
        while destination
            .poll_transmit(now, StreamId::Control, 1 << 16)
            .is_some()
        {}
        while destination.poll_event().is_some() {}
    }
    let _ = destination.handle_stream_finished(Duration::from_secs(1), StreamId::Control);
    destination.activated().then(|| destination.into_memory())
}

fn stream_id() -> impl Strategy<Value = StreamId> {
    prop_oneof![Just(StreamId::Control), (0u16..4).prop_map(StreamId::Page)]
}

/// A mutation of the transcript: flip, cut, insert or drop bytes in one chunk, or move a
/// chunk to another stream.
#[derive(Clone, Debug)]
enum Mutation {
    Flip {
        chunk: usize,
        at: usize,
        xor: u8,
    },
    Cut {
        chunk: usize,
        at: usize,
    },
    Insert {
        chunk: usize,
        at: usize,
        bytes: Vec<u8>,
    },
    Drop {
        chunk: usize,
    },
    Move {
        chunk: usize,
        to: StreamId,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let index = any::<prop::sample::Index>();
    prop_oneof![
        4 => (any::<usize>(), any::<usize>(), 1u8..).prop_map(|(chunk, at, xor)| Mutation::Flip { chunk, at, xor }),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(chunk, at)| Mutation::Cut { chunk, at }),
        1 => (any::<usize>(), any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(chunk, at, bytes)| Mutation::Insert { chunk, at, bytes }),
        1 => index.prop_map(|i| Mutation::Drop { chunk: i.index(usize::MAX) }),
        1 => (any::<usize>(), stream_id()).prop_map(|(chunk, to)| Mutation::Move { chunk, to }),
    ]
}

fn apply(chunks: &mut [(StreamId, Vec<u8>)], mutation: &Mutation) {
    let n = chunks.len();
    match mutation {
        Mutation::Flip { chunk, at, xor } => {
            let bytes = &mut chunks[chunk % n].1;
            if !bytes.is_empty() {
                let at = at % bytes.len();
                bytes[at] ^= xor;
            }
        }
        Mutation::Cut { chunk, at } => {
            let bytes = &mut chunks[chunk % n].1;
            let at = at % (bytes.len() + 1);
            bytes.truncate(at);
        }
        Mutation::Insert { chunk, at, bytes } => {
            let target = &mut chunks[chunk % n].1;
            let at = at % (target.len() + 1);
            target.splice(at..at, bytes.iter().copied());
        }
        Mutation::Drop { chunk } => chunks[chunk % n].1.clear(),
        Mutation::Move { chunk, to } => chunks[chunk % n].0 = *to,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_and_never_activate(
        chunks in prop::collection::vec((stream_id(), prop::collection::vec(any::<u8>(), 0..256)), 1..16),
        header in any::<bool>(),
    ) {
        let mut chunks = chunks;
        if header {
            // Past the magic, so the frames are what gets tested.
            for (_, bytes) in &mut chunks {
                let mut with_header = b"PAGEWIRE\x01\x00\x00\x00\x00\x00\x00\x00".to_vec();
                with_header.append(bytes);
                *bytes = with_header;
            }
        }
        prop_assert!(feed(&chunks).is_none());
    }

    #[test]
    fn mutated_migrations_never_panic(mutations in prop::collection::vec(mutation(), 1..4)) {
        let mut chunks = transcript();
        for mutation in &mutations {
            apply(&mut chunks, mutation);
        }
        // Some mutations leave a valid migration (a byte of the VM name or of the device
        // state, a page later sent again); any other change of memory is caught by the
        // digest, so a VM that runs has exactly the source's memory.
        if let Some(memory) = feed(&chunks) {
            prop_assert!(memory == recorded().memory);
        }
    }
}

#[test]
fn the_unmutated_transcript_activates() {
    let memory = feed(&transcript()).expect("the recorded migration activates");
    assert!(memory == recorded().memory);
}
