//! The my_rng function: BAR0 registers, generators, DMA engine and interrupts.
//!
//! Every rule comes from the spec crate: `regs::decode` classifies each BAR0 access,
//! `Generator` computes RNG/RNG64, `dma::Dma` is the DMA engine. This file only wires
//! them to the vfio-user world: DMA maps, eventfds, a background thread for DMA chunks.

use std::fs::File;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, error, trace};
use my_rng_spec::dma::{Dma, Event, Rng64, Source};
use my_rng_spec::regs::{self, Access, DmaState, Register};
use my_rng_spec::{Algorithm, Generator};

use crate::config::ConfigSpace;
use crate::memory::{DmaView, Maps};
use crate::timing::DmaTiming;

/// Bytes the DMA thread writes per chunk before it lets register accesses in (the spec
/// crate's model step, as the C device).
pub const DMA_CHUNK: u32 = my_rng_spec::dma::MODEL_STEP_BYTES;

/// Log a guest error: the device's equivalent of QEMU's `LOG_GUEST_ERROR`.
macro_rules! guest_error {
    ($name:expr, $($arg:tt)*) => {
        log::warn!(target: "guest_error", "{}: {}", $name, format_args!($($arg)*))
    };
}

/// Power-on and reset defaults of the generator (the spec's: glibc, seed 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Defaults {
    /// Algorithm after reset.
    pub algo: Algorithm,
    /// Seed latch after reset.
    pub seed: u32,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            algo: Algorithm::Glibc,
            seed: 0,
        }
    }
}

/// Host entropy, read from the kernel in blocks.
#[derive(Debug)]
pub struct Entropy {
    buf: [u8; 4096],
    pos: usize,
}

impl Default for Entropy {
    fn default() -> Self {
        Entropy {
            buf: [0; 4096],
            pos: 4096,
        }
    }
}

impl Entropy {
    /// Fill `out` with host entropy.
    pub fn fill(&mut self, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            if self.pos == self.buf.len() {
                self.refill();
            }
            let n = (out.len() - done).min(self.buf.len() - self.pos);
            out[done..done + n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            done += n;
        }
    }

    fn refill(&mut self) {
        let mut got = 0;
        while got < self.buf.len() {
            // SAFETY: writes at most the rest of `buf`.
            let r = unsafe {
                libc::getrandom(self.buf[got..].as_mut_ptr().cast(), self.buf.len() - got, 0)
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // getrandom(2) without GRND_NONBLOCK only fails on a broken kernel.
                error!("getrandom failed: {e}");
                std::process::abort();
            }
            got += r as usize;
        }
        self.pos = 0;
    }

    /// 32 bits of host entropy.
    pub fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill(&mut b);
        u32::from_le_bytes(b)
    }
}

impl Rng64 for Entropy {
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }
}

/// The interrupt eventfds QEMU handed over (SET_IRQS) and the INTx mask.
#[derive(Debug, Default)]
pub struct Irqs {
    /// INTx trigger eventfd.
    pub intx: Option<File>,
    /// INTx masked: by the automask after a trigger (VFIO semantics) or by ACTION_MASK;
    /// cleared by ACTION_UNMASK (QEMU sends it at the guest's next BAR access).
    pub intx_masked: bool,
    /// MSI vector 0 trigger eventfd; set while the guest has MSI enabled.
    pub msi: Option<File>,
}

fn signal(fd: &File) {
    // An eventfd counter only fails to add when it would overflow: the consumer has a
    // signal pending then anyway.
    if let Err(e) = (&*fd).write(&1u64.to_ne_bytes()) {
        debug!("eventfd write: {e}");
    }
}

/// The whole device state, behind the device lock.
pub struct State {
    /// Name used in log lines.
    pub name: String,
    /// PCI configuration space.
    pub config: ConfigSpace,
    defaults: Defaults,
    algo: Algorithm,
    seed: u32,
    /// `None` under [`Algorithm::Host`].
    gen: Option<Generator>,
    dma: Dma,
    /// DMA maps of the current connection.
    pub maps: Maps,
    entropy: Entropy,
    /// Interrupt eventfds.
    pub irqs: Irqs,
    /// Counters for tests and the log at disconnect.
    pub stats: Stats,
    /// Where DMA commands spend their time, for the log at disconnect.
    pub timing: DmaTiming,
}

/// What the device did, for the log and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// MSI messages sent.
    pub msi: u64,
    /// INTx triggers sent.
    pub intx: u64,
    /// Guest errors logged.
    pub guest_errors: u64,
    /// DMA commands ended.
    pub dma_ends: u64,
}

impl State {
    fn new(name: String, defaults: Defaults) -> State {
        State {
            name,
            config: ConfigSpace::new(),
            defaults,
            algo: defaults.algo,
            seed: defaults.seed,
            gen: Generator::new(defaults.algo, defaults.seed),
            dma: Dma::new(),
            maps: Maps::new(),
            entropy: Entropy::default(),
            irqs: Irqs::default(),
            stats: Stats::default(),
            timing: DmaTiming::default(),
        }
    }

    /// Device reset (vfio-user DEVICE_RESET, or a new connection): the spec's reset state;
    /// a running DMA command is dropped without interrupt and INTx deasserted. The DMA maps
    /// and eventfds belong to the connection and stay.
    pub fn reset(&mut self) {
        self.algo = self.defaults.algo;
        self.seed = self.defaults.seed;
        self.gen = Generator::new(self.algo, self.seed);
        self.dma.reset();
        self.timing.drop_command();
        self.irqs.intx_masked = false;
        self.update_intx();
    }

    /// A new connection: power-on state, no maps, no eventfds.
    pub fn power_on(&mut self) {
        self.maps.clear();
        self.irqs = Irqs::default();
        self.config = ConfigSpace::new();
        self.timing = DmaTiming::default();
        self.reset();
    }

    fn guest_error(&mut self, args: std::fmt::Arguments<'_>) {
        self.stats.guest_errors += 1;
        guest_error!(self.name, "{args}");
    }

    fn rng32(&mut self) -> u32 {
        match &mut self.gen {
            Some(g) => g.next_u32(),
            None => self.entropy.next_u32(),
        }
    }

    fn rng64(&mut self) -> u64 {
        match &mut self.gen {
            Some(g) => g.next_u64(),
            None => self.entropy.next_u64(),
        }
    }

    /// A BAR0 read of `data.len()` bytes at `offset` (little-endian). A guest error reads
    /// 0 with no side effect.
    pub fn bar_read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        let size = data.len() as u32;
        let reg = match regs::decode(offset, size, Access::Read) {
            Ok(r) => r,
            Err(e) => {
                self.guest_error(format_args!("read of {size} bytes at {offset:#x}: {e}"));
                return;
            }
        };
        let v: u64 = match reg {
            Register::Rng => self.rng32().into(),
            Register::Id => regs::ID_VALUE.into(),
            Register::Features => regs::FEATURES_VALUE.into(),
            Register::Algo => self.algo.id().into(),
            Register::Algos => regs::ALGOS_VALUE.into(),
            Register::Entropy => self.entropy.next_u32().into(),
            Register::Rng64 => self.rng64(),
            // Every other readable register is the DMA engine's.
            r => match self.dma.read(r) {
                Some(v) => v.into(),
                None => {
                    // decode() accepted a read the engine does not know: a spec-crate
                    // inconsistency, not a guest error.
                    error!("{}: no read handler for {r}", self.name);
                    0
                }
            },
        };
        data.copy_from_slice(&v.to_le_bytes()[..data.len()]);
    }

    /// A BAR0 write of `data` (little-endian) at `offset`. Returns whether the DMA thread
    /// has a command to run.
    pub fn bar_write(&mut self, offset: u64, data: &[u8]) -> bool {
        let size = data.len() as u32;
        let reg = match regs::decode(offset, size, Access::Write) {
            Ok(r) => r,
            Err(e) => {
                self.guest_error(format_args!("write of {size} bytes at {offset:#x}: {e}"));
                return false;
            }
        };
        let mut b = [0u8; 8];
        b[..data.len()].copy_from_slice(data);
        let v = u64::from_le_bytes(b) as u32;
        match reg {
            Register::Seed => {
                self.seed = v;
                if let Some(g) = &mut self.gen {
                    g.reseed(v);
                }
            }
            Register::Algo => match Algorithm::from_id(v).filter(|_| regs::algo_write_valid(v)) {
                Some(a) => {
                    self.algo = a;
                    self.gen = Generator::new(a, self.seed);
                }
                None => self.guest_error(format_args!("ALGO write of invalid value {v:#x}")),
            },
            r => {
                let mut view = DmaView {
                    maps: &self.maps,
                    bus_master: self.config.bus_master(),
                };
                match self.dma.write(r, v, &mut view) {
                    Some(ev) => {
                        self.event(ev);
                        // IRQ_STATUS and IRQ_ENABLE writes change the INTx level too.
                        self.update_intx();
                        return ev == Event::Started;
                    }
                    None => error!("{}: no write handler for {r}", self.name),
                }
            }
        }
        false
    }

    /// Act on an engine event: log, and signal the end.
    fn event(&mut self, ev: Event) {
        match ev {
            Event::None => {}
            Event::Started => {
                trace!("{}: DMA command started", self.name);
                self.timing.started(Instant::now());
            }
            Event::Rejected => self.guest_error(format_args!(
                "DMA_CMD written while a command runs: REJECTED"
            )),
            Event::Ended(state) => {
                self.stats.dma_ends += 1;
                if let DmaState::Error(e) = state {
                    if e != regs::DmaError::Aborted {
                        let st = self.dma.read(Register::DmaBytes).unwrap_or(0);
                        self.guest_error(format_args!(
                            "DMA command ended with error {} ({}) after {st} bytes",
                            e.code(),
                            e.name()
                        ));
                    }
                }
                // Before the signal: the woken client may preempt this thread.
                self.timing.ended(Instant::now());
                trace!("{}: DMA command ended: {state:?}", self.name);
                if self.dma.irq_enabled() {
                    if let Some(fd) = &self.irqs.msi {
                        signal(fd);
                        self.stats.msi += 1;
                    }
                }
            }
        }
    }

    /// INTx: level `(IRQ_STATUS & IRQ_ENABLE) != 0` unless MSI is on or Interrupt Disable
    /// is set. A rising level while unmasked triggers the eventfd and masks (VFIO's
    /// automasked INTx); QEMU unmasks at the guest's next BAR access, and a level still
    /// high then triggers again.
    pub fn update_intx(&mut self) {
        let pending = self.irqs.msi.is_none() && self.dma.irq_level();
        self.config.set_interrupt_status(pending);
        let level = pending && !self.config.intx_disabled();
        if level && !self.irqs.intx_masked {
            if let Some(fd) = &self.irqs.intx {
                signal(fd);
                self.stats.intx += 1;
                self.irqs.intx_masked = true;
            }
        }
    }

    /// Run one chunk of the running DMA command; whether it is still running.
    pub fn dma_step(&mut self) -> bool {
        if self.dma.is_busy() {
            self.timing.chunk(Instant::now());
        }
        let mut view = DmaView {
            maps: &self.maps,
            bus_master: self.config.bus_master(),
        };
        // Each output is drawn from the state current when it is drawn: FILL under a
        // deterministic algorithm takes the generator, FILL under "host" and FILL_HOST
        // take host entropy.
        let ev = match (self.dma.source(), &mut self.gen) {
            (None, _) => return false,
            (Some(Source::Algorithm), Some(g)) => self.dma.step(&mut view, g, DMA_CHUNK),
            (Some(_), _) => self.dma.step(&mut view, &mut self.entropy, DMA_CHUNK),
        };
        self.event(ev);
        self.update_intx();
        self.dma.is_busy()
    }
}

/// The device: its state behind a lock, and the DMA thread.
pub struct Device {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Woken when a DMA command starts.
    work: Condvar,
    /// Pause after each chunk.
    delay: Duration,
}

impl Device {
    /// A device in its power-on state, with its DMA thread started.
    pub fn new(name: String, defaults: Defaults) -> io::Result<Device> {
        Device::with_chunk_delay(name, defaults, Duration::ZERO)
    }

    /// Like [`Device::new`], the DMA thread sleeping `delay` after every chunk (tests use
    /// it to catch a command while BUSY).
    pub fn with_chunk_delay(
        name: String,
        defaults: Defaults,
        delay: Duration,
    ) -> io::Result<Device> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(name, defaults)),
            work: Condvar::new(),
            delay,
        });
        let s = Arc::clone(&shared);
        thread::Builder::new()
            .name("dma".into())
            .spawn(move || dma_thread(&s))?;
        Ok(Device { shared })
    }

    /// Lock the state. A panic while holding the lock is a bug that already stopped the
    /// process (panic = abort in the binary); tests keep going with the state as it is.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wake the DMA thread (after a write that started a command).
    pub fn kick(&self) {
        self.shared.work.notify_one();
    }

    /// A handle to the same device.
    pub fn clone_handle(&self) -> Device {
        Device {
            shared: Arc::clone(&self.shared),
        }
    }
}

fn dma_thread(shared: &Shared) {
    let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        while !st.dma.is_busy() {
            st = shared.work.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        if !st.dma_step() {
            continue;
        }
        // Let register accesses (DMA_STATUS polls, ABORT, unmaps) in between chunks.
        drop(st);
        if shared.delay.is_zero() {
            thread::yield_now();
        } else {
            thread::sleep(shared.delay);
        }
        st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    }
}
