//! The protocol between the host tooling (`cargo xtask`) and the test VM's guest: the boot
//! modes (`MYRNG_MODE`) and the kernel command-line parameters /init reads, the names of the
//! steps /init runs, the `@@` lines on the serial console, the `@@RESULT` records of the stress
//! tools, the e2e program's summary line and the bench report. Everything is named here once:
//! xtask and the guest programs use these items, and the guest's shell `/init` sources
//! `guest/initramfs/protocol.sh`, which [`shell::render`] writes (`cargo xtask vectors`).

pub mod bench;
pub mod e2e;
pub mod marker;
pub mod mode;
pub mod param;
pub mod record;
pub mod shell;
pub mod step;

pub use bench::{BenchReport, BenchRow};
pub use e2e::Summary;
pub use marker::{Framed, Marker};
pub use mode::Mode;
pub use record::Record;

/// Declares `&str` constants and a list of them as (constant name, value), for the shell file.
macro_rules! names {
    ($(#[$list_doc:meta])* $list:ident; $($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        $($(#[$doc])* pub const $name: &str = $value;)*
        $(#[$list_doc])*
        pub const $list: &[(&str, &str)] = &[$((stringify!($name), $name)),*];
    };
}
pub(crate) use names;
