//! Where a DMA command's time goes, as the server sees it. A driver waits for each command
//! (a bounce-path read, a RAND stash or hwrng pool refill), so its latency is what those
//! paths pay per command; the log line at disconnect splits it into the server's part
//! (start → end signalled) and the client's (end signalled → the next register access:
//! QEMU turning the eventfd into an MSI and the guest's handler reaching the device).

use std::fmt;
use std::time::{Duration, Instant};

/// Samples kept per stage: the most recent ones, enough for stable percentiles.
const KEEP: usize = 4096;

/// Durations of one stage, in µs (the last [`KEEP`]).
#[derive(Clone, Debug, Default)]
pub struct Samples {
    v: Vec<u32>,
    next: usize,
    count: u64,
}

impl Samples {
    /// Add one duration.
    pub fn push(&mut self, d: Duration) {
        let us = u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
        if self.v.len() < KEEP {
            self.v.push(us);
        } else {
            self.v[self.next] = us;
            self.next = (self.next + 1) % KEEP;
        }
        self.count += 1;
    }

    /// Durations added in all.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `p`-th percentile (0..=100) of the kept samples, µs; `None` without samples.
    pub fn percentile(&self, p: u32) -> Option<u32> {
        let mut s = self.v.clone();
        s.sort_unstable();
        let i = (s.len() * p.min(100) as usize / 100).min(s.len().checked_sub(1)?);
        Some(s[i])
    }
}

impl fmt::Display for Samples {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.percentile(50), self.percentile(90)) {
            (Some(m), Some(p)) => write!(f, "{m}/{p}"),
            _ => write!(f, "-"),
        }
    }
}

/// The running command's timestamps and the stages' samples.
#[derive(Clone, Debug, Default)]
pub struct DmaTiming {
    started: Option<Instant>,
    running: Option<Instant>,
    ended: Option<Instant>,
    /// DMA_CMD accepted → its first chunk begins.
    pub start: Samples,
    /// First chunk begins → end signalled (all chunks, and the pauses between them).
    pub run: Samples,
    /// End signalled → the client's next register access.
    pub answer: Samples,
}

impl DmaTiming {
    /// A command started (DMA_CMD accepted).
    pub fn started(&mut self, now: Instant) {
        self.started = Some(now);
        self.running = None;
    }

    /// A chunk of the running command begins.
    pub fn chunk(&mut self, now: Instant) {
        if let Some(t) = self.started.take() {
            self.start.push(now - t);
            self.running = Some(now);
        }
    }

    /// The command ended and its end was signalled (or would have been: IRQ disabled).
    pub fn ended(&mut self, now: Instant) {
        self.started = None;
        if let Some(t) = self.running.take() {
            self.run.push(now - t);
            self.ended = Some(now);
        }
    }

    /// A register access that arrived at `at`: the first after an end closes that end.
    pub fn access(&mut self, at: Instant) {
        if let Some(t) = self.ended.take() {
            self.answer.push(at.saturating_duration_since(t));
        }
    }

    /// A reset drops the running command: no stage of it is counted.
    pub fn drop_command(&mut self) {
        self.started = None;
        self.running = None;
        self.ended = None;
    }
}

impl fmt::Display for DmaTiming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DMA command µs (median/p90 of the last {KEEP}): start→first chunk {}, first \
             chunk→end signalled {} ({} commands), end→next register access {}",
            self.start,
            self.run,
            self.run.count(),
            self.answer
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_the_last_samples() {
        let mut s = Samples::default();
        assert_eq!(s.percentile(50), None);
        assert_eq!(s.to_string(), "-");
        for us in 1..=10u64 {
            s.push(Duration::from_micros(us));
        }
        assert_eq!(
            (s.percentile(0), s.percentile(50), s.percentile(90)),
            (Some(1), Some(6), Some(10))
        );
        assert_eq!(s.percentile(100), Some(10));
        // Once full, the oldest go first.
        for _ in 0..KEEP {
            s.push(Duration::from_micros(500));
        }
        assert_eq!((s.percentile(0), s.count()), (Some(500), KEEP as u64 + 10));
    }

    #[test]
    fn stages_follow_one_command() {
        let t0 = Instant::now();
        let at = |us| t0 + Duration::from_micros(us);
        let mut d = DmaTiming::default();
        d.started(at(0));
        d.chunk(at(20));
        d.chunk(at(50)); // a later chunk is not a start
        d.ended(at(70));
        d.access(at(170));
        d.access(at(300)); // only the first access after an end counts
        assert_eq!(d.start.percentile(50), Some(20));
        assert_eq!(d.run.percentile(50), Some(50));
        assert_eq!(d.answer.percentile(50), Some(100));
        assert_eq!(
            (d.start.count(), d.run.count(), d.answer.count()),
            (1, 1, 1)
        );
        // An error at START ends without a chunk: no stage; a reset drops the command.
        d.started(at(400));
        d.ended(at(401));
        d.started(at(500));
        d.chunk(at(510));
        d.drop_command();
        d.ended(at(520));
        d.access(at(600));
        assert_eq!(
            (d.start.count(), d.run.count(), d.answer.count()),
            (2, 1, 1)
        );
    }
}
