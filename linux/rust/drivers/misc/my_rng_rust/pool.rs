// SPDX-License-Identifier: GPL-2.0

//! hw_random: host entropy only (never the seeded sequence the node's users see). With DMA it
//! is served from a pool of two 4 KiB halves that FILL_HOST commands refill: while one half is
//! handed out, a work item refills the other ahead of demand, and a read that may not wait
//! never sleeps (the C driver's policy). Without DMA it reads the ENTROPY register.

use super::{
    dma::{self, POOL_HALF, POOL_HALVES},
    glue, regs, MyRng,
};
use kernel::{
    bindings,
    io::{io_project, Io},
    prelude::*,
    sync::{Arc, ArcBorrow, CondVarTimeoutResult},
    time::msecs_to_jiffies,
    workqueue::{self, impl_has_work, Work, WorkItem},
};

/// Both halves.
const ALL: u32 = (1 << POOL_HALVES) - 1;
/// Longest wait of a reading that may wait for a refill (as a DMA command's timeout).
const WAIT_MS: u32 = 10_000;

/// The pool's state, under its spinlock (taken without sleeping by hw_random's reads).
pub(crate) struct Pool {
    /// Bitmask of the halves full of unused entropy.
    ready: u32,
    /// The half handed out now.
    cur: usize,
    /// Bytes of `cur` already handed out.
    pos: usize,
    /// The device is going away: no more entropy, no refill queued.
    dead: bool,
}

impl Pool {
    pub(crate) const fn new() -> Self {
        Pool {
            ready: 0,
            cur: 0,
            pos: 0,
            dead: false,
        }
    }
}

impl_has_work! {
    impl HasWork<Self> for MyRng { self.pool_work }
}

impl WorkItem for MyRng {
    type Pointer = Arc<MyRng>;

    fn run(this: Arc<MyRng>) {
        this.pool_refill();
    }
}

impl MyRng {
    /// Takes up to `out.len()` bytes of the pool without sleeping, and queues a refill as soon
    /// as a half is empty. `me` is `self`, as the work item's reference.
    fn pool_take(&self, me: ArcBorrow<'_, MyRng>, out: &mut [u8]) -> Result<usize> {
        let d = self.dma.as_ref().ok_or(ENODEV)?;
        let mut p = self.pool.lock();
        if p.dead {
            return Err(ENODEV);
        }
        let mut done = 0;
        while done < out.len() {
            // An unready half has `pos` 0: try the other one.
            if p.ready & (1 << p.cur) == 0 {
                p.cur ^= 1;
                if p.ready & (1 << p.cur) == 0 {
                    break;
                }
            }
            let off = p.cur * POOL_HALF + p.pos;
            let n = (out.len() - done).min(POOL_HALF - p.pos);
            let src = io_project!(&d.pool, [try: off..off + n]);
            src.copy_to_slice(&mut out[done..done + n]);
            // Entropy is handed out once.
            dma::zero(src)?;
            done += n;
            p.pos += n;
            if p.pos == POOL_HALF {
                p.ready &= !(1 << p.cur);
                p.pos = 0;
            }
        }
        // Queued under the lock, so that none is queued once `pool_kill` has run; an `Arc`
        // handed back because the work was already queued is dropped after unlocking.
        let queued = (p.ready != ALL).then(|| workqueue::system().enqueue(Arc::from(me)));
        drop(p);
        drop(queued);
        Ok(done)
    }

    /// Fills the empty halves of the pool with host entropy; sleeps. Run by the work item, and
    /// by probe before hw_random's first read.
    pub(crate) fn pool_refill(&self) {
        let Some(d) = self.dma() else {
            return;
        };
        let todo = {
            let p = self.pool.lock();
            if p.dead {
                return;
            }
            !p.ready & ALL
        };
        let mut filled = 0;
        // Only this function fills halves (the work item never runs twice at once, and
        // probe's call comes before it can be queued): they stay unready meanwhile.
        if let Ok(_st) = self.lock_bound() {
            for half in 0..POOL_HALVES {
                if todo & (1 << half) == 0 {
                    continue;
                }
                let off = half * POOL_HALF;
                let (_, ret) =
                    self.dma_into(d, regs::DMA_CMD_FILL_HOST, &d.pool, off, POOL_HALF, false);
                if ret.is_ok() {
                    filled |= 1 << half;
                }
            }
        }
        self.pool.lock().ready |= filled;
        self.pool_wait.notify_all();
    }

    /// With `wait`, an empty pool waits for the refill that `pool_take` queued.
    fn pool_read(&self, me: ArcBorrow<'_, MyRng>, out: &mut [u8], wait: bool) -> Result<usize> {
        let n = self.pool_take(me, out)?;
        if n > 0 || !wait {
            return Ok(n);
        }
        {
            let mut p = self.pool.lock();
            let mut left = msecs_to_jiffies(WAIT_MS);
            while p.ready == 0 && !p.dead {
                match self.pool_wait.wait_interruptible_timeout(&mut p, left) {
                    CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
                    CondVarTimeoutResult::Timeout => break,
                    CondVarTimeoutResult::Signal { .. } => return Err(ERESTARTSYS),
                }
            }
        }
        self.pool_take(me, out)
    }

    /// No more entropy from the pool, and no refill queued from now on.
    pub(crate) fn pool_kill(&self) {
        self.pool.lock().dead = true;
        self.pool_wait.notify_all();
    }

    /// Waits until no refill is queued or running; after `pool_kill`, none is queued again.
    pub(crate) fn pool_flush(&self) {
        // SAFETY: `pool_work` is a valid, initialised `Work` for as long as `self` lives.
        let work = unsafe { Work::raw_get(&self.pool_work) };
        // The workqueue abstraction can queue a work item but neither flush nor cancel it:
        // the C call. SAFETY: `work` is a valid `work_struct`, initialised at allocation.
        unsafe { bindings::flush_work(work) };
    }

    /// The registers' hw_random: ENTROPY reads. A read that may not wait gets nothing while the
    /// device is busy.
    fn entropy_read(&self, out: &mut [u8], wait: bool) -> Result<usize> {
        let st = if wait {
            self.lock.lock()
        } else {
            match self.lock.try_lock() {
                Some(g) => g,
                None => return Ok(0),
            }
        };
        if st.unbound {
            return Err(ENODEV);
        }
        // The core asks for at most 64 bytes at a time.
        let mut words = [0u32; 16];
        let mut done = 0;
        while done < out.len() {
            let n = (out.len() - done).min(64);
            let w = &mut words[..n.div_ceil(4)];
            self.regs(|bar| glue::read_rep32(bar, regs::ENTROPY, w))??;
            out[done..done + n].copy_from_slice(&words.as_bytes()[..n]);
            done += n;
        }
        Ok(done)
    }

    /// hw_random's read: the pool on a DMA device, else the ENTROPY register.
    pub(crate) fn hwrng_read(
        &self,
        me: ArcBorrow<'_, MyRng>,
        out: &mut [u8],
        wait: bool,
    ) -> Result<usize> {
        if self.dma().is_some() {
            self.pool_read(me, out, wait)
        } else {
            self.entropy_read(out, wait)
        }
    }
}
