//! The vCPU-limit paper's memory-intensive workload: streaming video. A decoder writes
//! decoded frames into a ring of frame buffers (media data, replaced whole), keeps its state
//! in a small set of hot heap pages, and appends the incoming bitstream (compressed, random
//! bytes) to a ring buffer.

use std::time::Duration;

use pagewire_codec::{PageCount, PageNumber};

use super::WritePattern;
use crate::trace::content::ContentClass;
use crate::trace::rng::Rng;

/// Layout and rates of the video workload.
#[derive(Clone, Debug)]
pub struct Video {
    frame_pages: u64,
    ring_frames: u64,
    frames_per_epoch: f64,
    state_pages: u64,
    bitstream_pages: u64,
    bitstream_per_epoch: u64,
    start: u64,
    frames_due: f64,
    next_frame: u64,
    bitstream_cursor: u64,
}

impl Video {
    /// A decoder writing `frame_bytes` frames at `fps` into a ring of `ring_frames`, with
    /// `state_pages` hot state pages and a bitstream of `bitstream_bytes_per_second`; the
    /// regions are laid out from a quarter of the memory (and shrunk to fit).
    pub fn new(
        page_count: PageCount,
        page_bytes: u64,
        interval: Duration,
        frame_bytes: u64,
        fps: f64,
        ring_frames: u64,
        bitstream_bytes_per_second: f64,
    ) -> Self {
        let n = page_count.0.max(1);
        let start = n / 4;
        let room = n - start;
        let state_pages = (room / 64).clamp(1, 64);
        let bitstream_pages = (room / 16).max(1);
        let frame_room = room.saturating_sub(state_pages + bitstream_pages).max(1);
        let mut ring_frames = ring_frames.max(1);
        let frame_pages = frame_bytes.div_ceil(page_bytes).clamp(1, frame_room);
        while ring_frames > 1 && ring_frames * frame_pages > frame_room {
            ring_frames -= 1;
        }
        let bitstream_per_epoch = ((bitstream_bytes_per_second * interval.as_secs_f64())
            / page_bytes as f64)
            .ceil() as u64;
        Video {
            frame_pages,
            ring_frames,
            frames_per_epoch: fps * interval.as_secs_f64(),
            state_pages,
            bitstream_pages,
            bitstream_per_epoch: bitstream_per_epoch.min(bitstream_pages),
            start,
            frames_due: 0.0,
            next_frame: 0,
            bitstream_cursor: 0,
        }
    }

    fn ring_end(&self) -> u64 {
        self.start + self.ring_frames * self.frame_pages
    }

    fn state_end(&self) -> u64 {
        self.ring_end() + self.state_pages
    }
}

impl WritePattern for Video {
    fn name(&self) -> &'static str {
        "video"
    }

    fn epoch_pages(&mut self, _epoch: u64, _rng: &mut Rng, out: &mut Vec<PageNumber>) {
        self.frames_due += self.frames_per_epoch;
        let frames = (self.frames_due.floor() as u64).min(self.ring_frames);
        self.frames_due -= self.frames_due.floor();
        for _ in 0..frames {
            let first = self.start + self.next_frame * self.frame_pages;
            out.extend((first..first + self.frame_pages).map(PageNumber));
            self.next_frame = (self.next_frame + 1) % self.ring_frames;
        }
        out.extend((self.ring_end()..self.state_end()).map(PageNumber));
        for _ in 0..self.bitstream_per_epoch {
            out.push(PageNumber(self.state_end() + self.bitstream_cursor));
            self.bitstream_cursor = (self.bitstream_cursor + 1) % self.bitstream_pages;
        }
    }

    fn class_of(&self, page: PageNumber) -> Option<ContentClass> {
        let p = page.0;
        if (self.start..self.ring_end()).contains(&p) {
            Some(ContentClass::Media)
        } else if (self.ring_end()..self.state_end()).contains(&p) {
            Some(ContentClass::Pointers)
        } else if (self.state_end()..self.state_end() + self.bitstream_pages).contains(&p) {
            Some(ContentClass::Random)
        } else {
            None
        }
    }
}
