//! Least privilege: once the socket is bound and the threads run, the server only moves
//! messages, maps the memory QEMU hands over and writes eventfds. Everything else (opening
//! files, new sockets, exec, ...) fails with EPERM.

use std::collections::BTreeMap;
use std::io;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, SeccompRule};

/// The system calls the serving process needs after start-up.
const ALLOWED: &[i64] = &[
    // Messages, eventfds, the log, waiting.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_recvmsg,
    libc::SYS_recvfrom,
    libc::SYS_sendmsg,
    libc::SYS_sendto,
    libc::SYS_poll,
    libc::SYS_ppoll,
    // Accepting the next connection and its time limits.
    libc::SYS_accept4,
    libc::SYS_accept,
    libc::SYS_setsockopt,
    libc::SYS_fcntl,
    libc::SYS_close,
    // DMA maps and the allocator.
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_brk,
    // Threads and time.
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_restart_syscall,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_sigaltstack,
    // Start-up of the threads spawned just before the filter (TSYNC may reach them
    // before glibc registered them).
    libc::SYS_rseq,
    libc::SYS_set_robust_list,
    // Host entropy.
    libc::SYS_getrandom,
    // Removing the socket file at the stop.
    libc::SYS_unlink,
    libc::SYS_unlinkat,
    // Exit, and abort() on a fatal error.
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_tgkill,
];

/// The filter: the calls above are allowed, any other fails with EPERM.
pub fn filter() -> io::Result<BpfProgram> {
    let rules: BTreeMap<i64, Vec<SeccompRule>> = ALLOWED.iter().map(|&n| (n, Vec::new())).collect();
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| io::Error::other(format!("seccomp: {e:?}")))?;
    let f = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| io::Error::other(format!("seccomp: {e}")))?;
    f.try_into()
        .map_err(|e| io::Error::other(format!("seccomp: {e}")))
}

/// Install the filter on every thread of the process (TSYNC).
pub fn install() -> io::Result<()> {
    let prog = filter()?;
    seccompiler::apply_filter_all_threads(&prog)
        .map_err(|e| io::Error::other(format!("seccomp: {e}")))
}
