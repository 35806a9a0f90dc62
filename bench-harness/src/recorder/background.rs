//! Encoding on a thread of its own: [`BackgroundSink`] hands the recorded pages to another
//! [`EpochSink`] (the trace writer: XOR deltas and zstd) running on a worker thread, so the
//! recording thread keeps its scan period while an epoch is being encoded.
//!
//! The hand-off is a bounded channel of [`QUEUED_EPOCHS`] epochs: when the encoder falls that
//! far behind, the recording thread waits for it (the wait shows in the recorder's sink time
//! and overruns), so memory stays bounded. Epoch buffers go back to the recording thread
//! for reuse.

use std::io;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use pagewire_codec::PageNumber;

use super::phases::thread_cpu_time;
use super::sink::{EpochPages, EpochSink, HeldImage};

/// Epochs that may wait for the encoder before the recording thread waits too.
pub const QUEUED_EPOCHS: usize = 2;

enum Message {
    /// The initial image (sent once, before the first epoch).
    Initial(EpochPages),
    /// One epoch at its offset.
    Epoch(Duration, EpochPages),
}

/// What the encoder thread did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncoderReport {
    /// Pages handed to the inner sink (initial image and epochs).
    pub pages: u64,
    /// CPU time of the encoder thread.
    pub cpu: Duration,
}

impl EncoderReport {
    /// Encoder CPU time per page, in microseconds.
    pub fn micros_per_page(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.pages.max(1) as f64
    }

    /// `key = value` pairs for the trace's metadata.
    pub fn metadata(&self) -> Vec<(String, String)> {
        vec![
            (
                "recorder.encoder_cpu_ms".to_owned(),
                format!("{:.3}", self.cpu.as_secs_f64() * 1e3),
            ),
            (
                "recorder.encoder_cpu_us_per_page".to_owned(),
                format!("{:.2}", self.micros_per_page()),
            ),
        ]
    }
}

/// An [`EpochSink`] that forwards to `S` on a worker thread.
pub struct BackgroundSink<S> {
    page_size: usize,
    initial: HeldImage,
    sender: Option<SyncSender<Message>>,
    recycled: Receiver<EpochPages>,
    worker: Option<JoinHandle<io::Result<(S, EncoderReport)>>>,
}

impl<S: EpochSink + Send + 'static> BackgroundSink<S> {
    /// Starts the worker thread that feeds `inner` with pages of `page_size` bytes.
    pub fn spawn(inner: S, page_size: usize) -> io::Result<Self> {
        let (sender, receiver) = sync_channel(QUEUED_EPOCHS);
        // The recycling channel never blocks the worker: it holds every buffer in flight.
        let (recycle, recycled) = sync_channel(QUEUED_EPOCHS + 2);
        let worker = std::thread::Builder::new()
            .name("pagewire-encoder".to_owned())
            .spawn(move || encode(inner, receiver, recycle))?;
        Ok(Self {
            page_size,
            initial: HeldImage::new(page_size),
            sender: Some(sender),
            recycled,
            worker: Some(worker),
        })
    }

    /// Sends what is pending, waits for the worker to write everything, and returns the
    /// inner sink with the encoder's report; the first error of the inner sink, if any.
    pub fn finish(mut self) -> io::Result<(S, EncoderReport)> {
        let sent = self.send_initial();
        self.sender = None;
        let worker = self.worker.take().expect("joined only here");
        let joined = worker
            .join()
            .map_err(|_| io::Error::other("the trace encoder thread panicked"))?;
        // An error of the inner sink explains a failed send better than the send does.
        let finished = joined?;
        sent?;
        Ok(finished)
    }

    fn send(&mut self, message: Message) -> io::Result<()> {
        let sender = self.sender.as_ref().expect("present until finish");
        sender.send(message).map_err(|_| {
            io::Error::other("the trace encoder stopped (its error is reported at the end)")
        })
    }

    fn send_initial(&mut self) -> io::Result<()> {
        match self.initial.take() {
            Some(initial) => self.send(Message::Initial(initial)),
            None => Ok(()),
        }
    }

    /// A buffer for the next epoch: one the worker is done with, or a new one.
    fn buffer(&mut self) -> EpochPages {
        match self.recycled.try_recv() {
            Ok(mut pages) => {
                pages.clear();
                pages
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                EpochPages::new(self.page_size)
            }
        }
    }
}

/// The worker: feeds `inner` until the channel closes or `inner` fails.
fn encode<S: EpochSink>(
    mut inner: S,
    receiver: Receiver<Message>,
    recycle: SyncSender<EpochPages>,
) -> io::Result<(S, EncoderReport)> {
    let cpu_started = thread_cpu_time();
    let mut report = EncoderReport::default();
    for message in receiver {
        let pages = match message {
            Message::Initial(pages) => {
                for (page, content) in pages.iter() {
                    inner.initial_page(page, content)?;
                }
                pages
            }
            Message::Epoch(offset, pages) => {
                inner.epoch(offset, &pages)?;
                pages
            }
        };
        report.pages += pages.len() as u64;
        // A full recycling channel only means the buffer is dropped.
        let _ = recycle.try_send(pages);
    }
    report.cpu = thread_cpu_time().saturating_sub(cpu_started);
    Ok((inner, report))
}

impl<S: EpochSink + Send + 'static> EpochSink for BackgroundSink<S> {
    fn initial_page(&mut self, page: PageNumber, content: &[u8]) -> io::Result<()> {
        self.initial.push(page, content)
    }

    fn epoch(&mut self, offset: Duration, pages: &EpochPages) -> io::Result<()> {
        self.send_initial()?;
        let mut copy = self.buffer();
        for (page, content) in pages.iter() {
            copy.push(page, content);
        }
        self.send(Message::Epoch(offset, copy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::MemorySink;

    fn page(byte: u8) -> Vec<u8> {
        vec![byte; 64]
    }

    #[test]
    fn forwards_initial_image_and_epochs_in_order() {
        let mut sink = BackgroundSink::spawn(MemorySink::default(), 64).unwrap();
        sink.initial_page(PageNumber(0), &page(1)).unwrap();
        for epoch in 1..=5u8 {
            let mut pages = EpochPages::new(64);
            pages.push(PageNumber(u64::from(epoch)), &page(epoch));
            sink.epoch(Duration::from_millis(u64::from(epoch)), &pages)
                .unwrap();
        }
        let (memory, report) = sink.finish().unwrap();
        assert_eq!(memory.initial, vec![(PageNumber(0), page(1))]);
        assert_eq!(memory.epochs.len(), 5);
        for (index, epoch) in memory.epochs.iter().enumerate() {
            let number = index as u64 + 1;
            assert_eq!(epoch.offset, Duration::from_millis(number));
            let pages: Vec<_> = epoch.pages.iter().collect();
            assert_eq!(pages, vec![(PageNumber(number), &page(number as u8)[..])]);
        }
        assert_eq!(report.pages, 6);
    }

    /// A sink that fails on its second epoch.
    struct FailingSink(u32);

    impl EpochSink for FailingSink {
        fn initial_page(&mut self, _: PageNumber, _: &[u8]) -> io::Result<()> {
            Ok(())
        }
        fn epoch(&mut self, _: Duration, _: &EpochPages) -> io::Result<()> {
            self.0 += 1;
            if self.0 == 2 {
                return Err(io::Error::other("disk full"));
            }
            Ok(())
        }
    }

    #[test]
    fn reports_the_inner_sinks_error_at_finish() {
        let mut sink = BackgroundSink::spawn(FailingSink(0), 64).unwrap();
        let pages = EpochPages::new(64);
        for _ in 0..10 {
            // Sends after the worker stopped fail; finish says why.
            if sink.epoch(Duration::ZERO, &pages).is_err() {
                break;
            }
        }
        let error = sink.finish().err().expect("the inner sink failed");
        assert_eq!(error.to_string(), "disk full");
    }
}
