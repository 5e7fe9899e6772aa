//! Bad protocol input: error replies (or a closed connection where the stream cannot be
//! resynchronised), a log line, never a crash or a hang; the server keeps serving.

mod common;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::*;
use my_rng_spec::regs;
use vmm_sys_util::sock_ctrl_msg::ScmSocket;

const EINVAL: i32 = libc::EINVAL;

fn region_access(region: u32, off: u64, count: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&off.to_le_bytes());
    b.extend_from_slice(&region.to_le_bytes());
    b.extend_from_slice(&count.to_le_bytes());
    b
}

fn dma_map(iova: u64, size: u64) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&32u32.to_le_bytes()); // argsz
    b.extend_from_slice(&3u32.to_le_bytes()); // READ | WRITE
    b.extend_from_slice(&0u64.to_le_bytes()); // offset
    b.extend_from_slice(&iova.to_le_bytes());
    b.extend_from_slice(&size.to_le_bytes());
    b
}

fn set_irqs(flags: u32, index: u32, start: u32, count: u32) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [20, flags, index, start, count] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b
}

/// Send a message with file descriptors.
fn send_fds(r: &mut Raw, command: u16, body: &[u8], fds: &[i32]) {
    let mut m = r.header(command, 16 + body.len(), 0);
    m.extend_from_slice(body);
    let n = r.s.send_with_fds(&[&m[..]], fds).unwrap();
    assert_eq!(n, m.len());
}

fn in_sync(r: &mut Raw) {
    assert_eq!(r.read32(regs::ID), Ok(0x4d52_0201), "stream in sync");
}

#[test]
fn malformed_messages_get_error_replies() {
    let mut srv = Server::start(&["--io-timeout-ms", "300"]);
    let mut r = srv.raw();
    r.version();
    in_sync(&mut r);

    // Unknown and unsupported commands, with a payload to skip.
    r.expect_error(99, &[1, 2, 3, 4, 5, 6, 7, 8], None, libc::ENOSYS);
    r.expect_error(0, &[], None, libc::ENOSYS);
    r.expect_error(6, &[0; 16], None, libc::ENOTSUP);
    r.expect_error(11, &[0; 24], None, libc::ENOTSUP);
    in_sync(&mut r);

    // VERSION: too short, no NUL, an interior NUL, not JSON.
    r.expect_error(1, &[0, 0], None, EINVAL);
    r.expect_error(1, b"\0\0\x01\0{}", None, EINVAL);
    r.expect_error(1, b"\0\0\x01\0{\0}\0", None, EINVAL);
    r.expect_error(1, b"\0\0\x01\0not json\0", None, EINVAL);
    in_sync(&mut r);

    // Fixed-size commands with a wrong payload size.
    r.expect_error(4, &[0; 15], None, EINVAL);
    r.expect_error(4, &[0; 17], None, EINVAL);
    r.expect_error(5, &[0; 8], None, EINVAL);
    r.expect_error(13, &[0; 4], None, EINVAL);
    in_sync(&mut r);

    // Region accesses: out of range, absent regions, impossible sizes.
    r.expect_error(9, &region_access(0, 0, 16), None, EINVAL);
    r.expect_error(9, &region_access(0, 0, 0), None, EINVAL);
    r.expect_error(9, &region_access(0, 0, 0x1_0000), None, EINVAL);
    r.expect_error(9, &region_access(99, 0, 4), None, EINVAL);
    r.expect_error(9, &region_access(1, 0, 4), None, EINVAL);
    r.expect_error(9, &region_access(7, 250, 8), None, EINVAL);
    r.expect_error(9, &region_access(7, u64::MAX, 4), None, EINVAL);
    let mut w = region_access(0, 4, 4);
    w.extend_from_slice(&[1, 2]);
    r.expect_error(10, &w, None, EINVAL);
    // A bad region index with data to skip (the crate alone would leave it in the stream).
    let mut w = region_access(9, 0, 8);
    w.extend_from_slice(&[0x10, 0, 1, 0, 0x10, 0, 0, 0]);
    r.expect_error(10, &w, None, EINVAL);
    let mut w = region_access(7, 0xff, 2);
    w.extend_from_slice(&[1, 2]);
    r.expect_error(10, &w, None, EINVAL);
    in_sync(&mut r);
    // An access a CPU can make but the ABI refuses is a guest error, not a protocol one:
    // the read returns 0.
    assert_eq!(r.read32(0xffe), Ok(0));
    assert_eq!(r.read32(0x1c), Ok(0));

    // DMA maps: overlapping, empty, wrapping, two file descriptors, unmaps that cut.
    let ram = Ram::new(0x10_0000, 0x10_0000);
    let fd = ram.file.as_raw_fd();
    send_fds(&mut r, 2, &dma_map(0x10_0000, 0x10_0000), &[fd]);
    let rep = r.reply().unwrap();
    assert_eq!(rep.flags & ERROR, 0, "first map");
    send_fds(&mut r, 2, &dma_map(0x18_0000, 0x10_0000), &[fd]);
    let rep = r.reply().unwrap();
    assert_eq!(
        (rep.flags & ERROR, rep.error),
        (ERROR, EINVAL as u32),
        "overlap"
    );
    r.expect_error(2, &dma_map(0x80_0000, 0), None, EINVAL);
    r.expect_error(2, &dma_map(u64::MAX - 0xfff, 0x2000), None, EINVAL);
    send_fds(&mut r, 2, &dma_map(0x90_0000, 0x1000), &[fd, fd]);
    let rep = r.reply().unwrap();
    assert_eq!(
        (rep.flags & ERROR, rep.error),
        (ERROR, EINVAL as u32),
        "two fds"
    );
    let mut unmap = Vec::new();
    unmap.extend_from_slice(&24u32.to_le_bytes());
    unmap.extend_from_slice(&0u32.to_le_bytes());
    unmap.extend_from_slice(&0x10_0000u64.to_le_bytes());
    unmap.extend_from_slice(&0x1000u64.to_le_bytes());
    r.expect_error(3, &unmap, None, EINVAL);
    // File descriptors where none belong are refused (and closed).
    send_fds(&mut r, 4, &[0; 16], &[fd]);
    let rep = r.reply().unwrap();
    assert_eq!(rep.flags & ERROR, ERROR);
    in_sync(&mut r);

    // GET_IRQ_INFO: ERR and REQ are absent (QEMU asks; an error reply, quietly).
    for index in [3u32, 4, 99] {
        let mut b = Vec::new();
        for v in [16, 0, index, 0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        r.expect_error(7, &b, None, EINVAL);
    }
    // SET_IRQS: no such interrupt, DATA_BOOL, eventfd count without descriptors, MSI-X.
    let ev = eventfd();
    r.expect_error(8, &set_irqs(0x24, 9, 0, 1), None, EINVAL);
    r.expect_error(8, &set_irqs(0x22, 0, 0, 1), None, EINVAL);
    r.expect_error(8, &set_irqs(0x24, 0, 0, 1), None, EINVAL);
    r.expect_error(8, &set_irqs(0x24, 1, 1, 1), None, EINVAL);
    send_fds(&mut r, 8, &set_irqs(0x24, 2, 0, 1), &[ev.as_raw_fd()]);
    let rep = r.reply().unwrap();
    assert_eq!(rep.flags & ERROR, ERROR, "MSI-X has no vectors");
    in_sync(&mut r);

    // NO_REPLY: a bad message gets no reply (the next reply read is the probe's).
    r.send(99, &[0; 4], None, NO_REPLY);
    let mut w = region_access(0, 4, 4);
    w.extend_from_slice(&0x42u32.to_le_bytes());
    r.send(10, &w, None, NO_REPLY);
    in_sync(&mut r);
    // Posted writes the device refuses get no reply either (QEMU sends BAR writes posted):
    // outside the configuration space, and larger than a CPU access to BAR0.
    let mut w = region_access(7, 0xff, 2);
    w.extend_from_slice(&[1, 2]);
    r.send(10, &w, None, NO_REPLY);
    let mut w = region_access(0, 0, 16);
    w.extend_from_slice(&[0; 16]);
    r.send(10, &w, None, NO_REPLY);
    in_sync(&mut r);
    // A reply sent to the server is ignored.
    r.send(9, &region_access(0, 8, 4), None, REPLY);
    in_sync(&mut r);

    // Still one device, still consistent: the posted SEED write took effect.
    assert_eq!(r.read32(regs::RNG), Ok(286129175));
    assert!(srv.alive());
    let (clean, removed, log) = srv.stop();
    assert!(clean && removed);
    assert!(log.contains("bad message"), "logged");
    assert!(log.contains("overlaps"), "overlap logged");
}

/// Streams that cannot be resynchronised: the connection is closed (after the I/O time
/// limit for a truncated message), and the next connection is served.
#[test]
fn truncated_and_oversized_messages_close_the_connection() {
    let mut srv = Server::start(&["--io-timeout-ms", "300"]);

    // A header announcing more than arrives: closed after the time limit.
    let mut r = srv.raw();
    r.version();
    let m = r.header(9, 32, 0);
    r.s.write_all(&m).unwrap();
    r.s.write_all(&[0; 4]).unwrap();
    let t = Instant::now();
    assert!(r.closed(), "closed");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "within the time limit"
    );

    // Sizes no message can have.
    for size in [0usize, 8, 15, 1 << 20, u32::MAX as usize] {
        let mut r = srv.raw();
        r.version();
        let m = r.header(10, size, 0);
        r.s.write_all(&m).unwrap();
        assert!(r.closed(), "size {size}");
    }

    // Half a header, then the client goes away.
    let mut r = srv.raw();
    r.s.write_all(&[1, 0, 1]).unwrap();
    drop(r);

    // The server still serves.
    let mut r = srv.raw();
    r.version();
    in_sync(&mut r);
    assert!(srv.alive());
    let (clean, _, log) = srv.stop();
    assert!(clean);
    assert!(log.contains("truncated"), "truncation logged");
    assert!(log.contains("has size"), "bad size logged");
}
