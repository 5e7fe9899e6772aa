//! Shared by the guest test programs: `my-rng-e2e` (the end-to-end suite) and `my-rng-stress`
//! (bounded stress, fuzz, hot-unplug and migration workloads).

pub mod util;
