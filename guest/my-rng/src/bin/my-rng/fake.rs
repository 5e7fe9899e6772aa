//! A fake device for the CLI's unit tests: the reference generators behind the
//! [`RngDevice`] calls, with an injectable failure.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};

use my_rng::{Algorithm, Error, Info, Result};
use my_rng_spec::Generator;

use crate::dev::RngDevice;

/// Reference-generator device. `Host` yields a counter (tests need it to be predictable).
pub struct FakeDevice {
    pub path: PathBuf,
    pub info: Info,
    /// When set, INFO fails with this error (built on each call: `Error` is not `Clone`).
    pub info_error: Option<fn(&Path) -> Error>,
    /// Successful calls left before every call fails with ENODEV (`None`: never).
    pub calls_left: Cell<Option<u32>>,
    /// Largest number of bytes one read() returns.
    pub read_bound: usize,
    /// read() returns 0 (end of file), like a node that is not a my_rng device.
    pub eof: bool,
    /// Every call, in order (`"SEED 0x42"`, `"RAND"`, ...).
    pub log: RefCell<Vec<String>>,
    pub state: RefCell<State>,
}

pub struct State {
    seed: u32,
    algo: u32,
    gen: Option<Generator>,
    host: u64,
}

impl State {
    fn next_u64(&mut self) -> u64 {
        match &mut self.gen {
            Some(g) => g.next_u64(),
            None => {
                self.host += 1;
                self.host
            }
        }
    }
}

impl FakeDevice {
    /// An ABI 2.0 device on glibc, seed 0 (a fresh boot).
    pub fn new() -> Self {
        FakeDevice {
            path: PathBuf::from("/dev/fake_rng"),
            // Literals: an ABI 2.0 device, whatever the spec crate's current version is.
            info: Info {
                id: 0x4d52_0200,
                features: 0x7,
                algos: 0xf,
                algo: 0,
                abi_version: Some((2, 0)),
            },
            info_error: None,
            calls_left: Cell::new(None),
            read_bound: 64 * 1024,
            eof: false,
            log: RefCell::new(Vec::new()),
            state: RefCell::new(State {
                seed: 0,
                algo: 0,
                gen: Generator::new(Algorithm::Glibc, 0),
                host: 0,
            }),
        }
    }

    /// Fail every call after `n` successful ones.
    pub fn failing_after(self, n: u32) -> Self {
        self.calls_left.set(Some(n));
        self
    }

    /// Record `what`, or fail it if the failure budget is used up.
    fn call(&self, what: String, op: &'static str) -> Result<()> {
        self.log.borrow_mut().push(what);
        match self.calls_left.get() {
            Some(0) => Err(Error::NoDevice {
                op,
                path: self.path.clone(),
            }),
            Some(n) => {
                self.calls_left.set(Some(n - 1));
                Ok(())
            }
            None => Ok(()),
        }
    }

    pub fn calls(&self) -> Vec<String> {
        self.log.borrow().clone()
    }
}

impl RngDevice for FakeDevice {
    fn path(&self) -> &Path {
        &self.path
    }

    fn info(&self) -> Result<Info> {
        self.call("INFO".into(), "INFO")?;
        if let Some(e) = self.info_error {
            return Err(e(&self.path));
        }
        Ok(Info {
            algo: self.state.borrow().algo,
            ..self.info
        })
    }

    fn seed(&self, seed: u32) -> Result<()> {
        self.call(format!("SEED {seed:#x}"), "SEED")?;
        let mut s = self.state.borrow_mut();
        s.seed = seed;
        if let Some(g) = &mut s.gen {
            g.reseed(seed);
        }
        Ok(())
    }

    fn next_u32(&self) -> Result<u32> {
        self.call("RAND".into(), "RAND")?;
        let mut s = self.state.borrow_mut();
        Ok(match &mut s.gen {
            Some(g) => g.next_u32(),
            None => s.next_u64() as u32,
        })
    }

    fn next_u64(&self) -> Result<u64> {
        self.call("RAND64".into(), "RAND64")?;
        Ok(self.state.borrow_mut().next_u64())
    }

    fn set_algorithm_id(&self, id: u32) -> Result<()> {
        self.call(format!("SET_ALGO {id}"), "SET_ALGO")?;
        let alg = Algorithm::from_id(id)
            .filter(|_| id < 32 && self.info.algos & (1 << id) != 0)
            .ok_or(Error::UnsupportedAlgorithm { id })?;
        let mut s = self.state.borrow_mut();
        s.algo = id;
        s.gen = Generator::new(alg, s.seed);
        Ok(())
    }

    fn algorithm_id(&self) -> Result<u32> {
        self.call("GET_ALGO".into(), "GET_ALGO")?;
        Ok(self.state.borrow().algo)
    }

    fn seed_read(&self, seed: u32, out: &mut [u32]) -> Result<()> {
        self.call(format!("SEED_READ {seed:#x} {}", out.len()), "SEED_READ")?;
        let mut s = self.state.borrow_mut();
        s.seed = seed;
        if let Some(g) = &mut s.gen {
            g.reseed(seed);
            out.iter_mut().for_each(|v| *v = g.next_u32());
        }
        Ok(())
    }

    /// Little-endian RNG64 values; the unused bytes of the last one are dropped (as the
    /// driver does).
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        self.call(format!("read {}", buf.len()), "read")?;
        if self.eof {
            return Ok(0);
        }
        let n = buf.len().min(self.read_bound);
        let mut s = self.state.borrow_mut();
        for chunk in buf[..n].chunks_mut(8) {
            let v = s.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(n)
    }
}
