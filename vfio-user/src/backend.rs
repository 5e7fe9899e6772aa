//! The vfio_user crate's `ServerBackend` for the device: regions (BAR0, config space), DMA
//! maps, interrupts, reset.

use std::fs::File;
use std::io;
use std::time::Instant;

use log::{debug, info};
use vfio_bindings::bindings::vfio::{
    vfio_region_info, VFIO_IRQ_INFO_AUTOMASKED, VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_INFO_MASKABLE,
    VFIO_IRQ_INFO_NORESIZE, VFIO_IRQ_SET_ACTION_MASK, VFIO_IRQ_SET_ACTION_TRIGGER,
    VFIO_IRQ_SET_ACTION_TYPE_MASK, VFIO_IRQ_SET_ACTION_UNMASK, VFIO_IRQ_SET_DATA_EVENTFD,
    VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_DATA_TYPE_MASK, VFIO_PCI_BAR0_REGION_INDEX,
    VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX,
    VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_NUM_REGIONS, VFIO_REGION_INFO_FLAG_READ,
    VFIO_REGION_INFO_FLAG_WRITE,
};
use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, ServerBackend, ServerRegion};

use crate::config::{ConfigSpace, CONFIG_SIZE};
use crate::device::{Device, State};
use my_rng_spec::regs::BAR_SIZE;

/// Region index of BAR0.
pub const BAR0: u32 = VFIO_PCI_BAR0_REGION_INDEX;
/// Region index of the configuration space.
pub const CONFIG: u32 = VFIO_PCI_CONFIG_REGION_INDEX;

/// The largest access to BAR0 that can be a CPU access (RNG64: 8 bytes). Larger ones are
/// refused with an error reply: they are protocol misuse, not a guest's register access.
pub const MAX_BAR_ACCESS: usize = 8;

/// Size of each region: BAR0 and the configuration space; the other BARs, the ROM and VGA
/// are absent (size 0).
pub fn region_size(index: u32) -> u64 {
    match index {
        BAR0 => BAR_SIZE,
        CONFIG => CONFIG_SIZE as u64,
        _ => 0,
    }
}

/// The region table the server announces (QEMU wants all VFIO_PCI_NUM_REGIONS).
pub fn regions() -> Vec<ServerRegion> {
    (0..VFIO_PCI_NUM_REGIONS)
        .map(|index| {
            let size = region_size(index);
            let flags = if size != 0 {
                VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE
            } else {
                0
            };
            ServerRegion {
                region_info: vfio_region_info {
                    argsz: std::mem::size_of::<vfio_region_info>() as u32,
                    flags,
                    index,
                    cap_offset: 0,
                    size,
                    offset: 0,
                },
                sparse_areas: Vec::new(),
                mmap_fd: None,
            }
        })
        .collect()
}

/// The interrupt table: INTx (one, maskable, automasked like VFIO's), MSI (one vector) and
/// MSI-X (none). The table ends there, as for a conventional PCI device of an old kernel:
/// QEMU then skips the error and request notifiers quietly (with an ERR entry of count 0 it
/// warns "Could not enable error recovery").
pub fn irqs() -> Vec<IrqInfo> {
    (0..=VFIO_PCI_MSIX_IRQ_INDEX)
        .map(|index| {
            let (count, flags) = match index {
                VFIO_PCI_INTX_IRQ_INDEX => (
                    1,
                    VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED,
                ),
                VFIO_PCI_MSI_IRQ_INDEX => (1, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE),
                _ => (0, 0),
            };
            IrqInfo {
                index,
                flags,
                count,
            }
        })
        .collect()
}

fn einval(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The backend of one connection.
pub struct Backend {
    device: Device,
}

impl Backend {
    /// A backend serving `device`.
    pub fn new(device: Device) -> Backend {
        Backend { device }
    }
}

/// Whether a SET_IRQS request is well formed for the interrupt table: why not, if it is not.
fn validate_set_irqs(
    index: u32,
    flags: u32,
    start: u32,
    count: u32,
    nfds: usize,
) -> Result<(), &'static str> {
    let data = flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
    let action = flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    if flags & !(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK) != 0
        || data.count_ones() != 1
        || action.count_ones() != 1
    {
        return Err("bad flags");
    }
    let max = irqs()
        .get(index as usize)
        .map(|i| i.count)
        .ok_or("no such interrupt")?;
    if start.checked_add(count).is_none_or(|end| end > max) {
        return Err("vector range outside the interrupt");
    }
    let want_fds = if data == VFIO_IRQ_SET_DATA_EVENTFD {
        count as usize
    } else {
        0
    };
    if nfds != want_fds || (data != VFIO_IRQ_SET_DATA_EVENTFD && data != VFIO_IRQ_SET_DATA_NONE) {
        return Err("file descriptors do not match the data type");
    }
    Ok(())
}

/// Apply a validated SET_IRQS request; `false` if the device does not support the action.
fn apply_irqs(
    st: &mut State,
    index: u32,
    action: u32,
    data: u32,
    count: u32,
    fds: Vec<File>,
) -> bool {
    let mut fds = fds.into_iter();
    match (index, action, data) {
        (_, _, _) if count == 0 && action == VFIO_IRQ_SET_ACTION_TRIGGER => {
            // Disable: drop the eventfd.
            match index {
                VFIO_PCI_INTX_IRQ_INDEX => {
                    st.irqs.intx = None;
                    st.irqs.intx_masked = false;
                }
                VFIO_PCI_MSI_IRQ_INDEX => st.irqs.msi = None,
                _ => {}
            }
        }
        (_, _, _) if count == 0 => {}
        (VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD) => {
            st.irqs.intx = fds.next();
            st.irqs.intx_masked = false;
        }
        (VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD) => {
            st.irqs.msi = fds.next();
        }
        (VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_MASK, VFIO_IRQ_SET_DATA_NONE) => {
            st.irqs.intx_masked = true;
        }
        (VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK, VFIO_IRQ_SET_DATA_NONE) => {
            st.irqs.intx_masked = false;
        }
        // Loopback triggers, as VFIO allows.
        (VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_NONE) => {
            if let Some(f) = &st.irqs.intx {
                let _ = std::io::Write::write(&mut &*f, &1u64.to_ne_bytes());
            }
        }
        (VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_NONE) => {
            if let Some(f) = &st.irqs.msi {
                let _ = std::io::Write::write(&mut &*f, &1u64.to_ne_bytes());
            }
        }
        // MSI without per-vector masking: mask/unmask have nothing to do.
        (VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK, _)
            if data == VFIO_IRQ_SET_DATA_NONE => {}
        _ => return false,
    }
    true
}

impl ServerBackend for Backend {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> io::Result<()> {
        let at = Instant::now();
        let mut st = self.device.lock();
        st.timing.access(at);
        match region {
            BAR0 if (1..=MAX_BAR_ACCESS).contains(&data.len()) => {
                st.bar_read(offset, data);
                Ok(())
            }
            CONFIG if !data.is_empty() && st.config.read(offset, data) => Ok(()),
            _ => Err(einval(format!(
                "{}: read of {} bytes at {offset:#x} of region {region}: outside the region",
                st.name,
                data.len()
            ))),
        }
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        let at = Instant::now();
        let mut st = self.device.lock();
        st.timing.access(at);
        match region {
            BAR0 if (1..=MAX_BAR_ACCESS).contains(&data.len()) => {
                // A started command's first chunk runs here and now: a command of one
                // chunk (a bounce-path read, a stash or pool refill) ends and signals its
                // interrupt without waking the DMA thread, whose wake-up was the largest
                // part of the server's share of such a command. Longer ones go on there.
                if st.bar_write(offset, data) && st.dma_step() {
                    self.device.kick();
                }
                Ok(())
            }
            CONFIG if !data.is_empty() && ConfigSpace::contains(offset, data.len()) => {
                st.config.write(offset, data);
                // Interrupt Disable may have changed.
                st.update_intx();
                Ok(())
            }
            _ => Err(einval(format!(
                "{}: write of {} bytes at {offset:#x} of region {region}: outside the region",
                st.name,
                data.len()
            ))),
        }
    }

    fn dma_map(
        &mut self,
        flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<File>,
    ) -> io::Result<()> {
        let mut st = self.device.lock();
        debug!(
            "{}: DMA map {address:#x}+{size:#x} offset {offset:#x} flags {flags:?} fd {}",
            st.name,
            fd.is_some()
        );
        let r = st.maps.map(
            address,
            size,
            flags.contains(DmaMapFlags::READ),
            flags.contains(DmaMapFlags::WRITE),
            fd.map(|f| (f, offset)),
        );
        r.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", st.name)))
    }

    fn dma_unmap(&mut self, flags: DmaUnmapFlags, address: u64, size: u64) -> io::Result<()> {
        let mut st = self.device.lock();
        debug!("{}: DMA unmap {address:#x}+{size:#x} {flags:?}", st.name);
        if flags.contains(DmaUnmapFlags::UNMAP_ALL) {
            st.maps.clear();
            return Ok(());
        }
        if flags.contains(DmaUnmapFlags::GET_DIRTY_PAGE_INFO) {
            return Err(einval(format!(
                "{}: dirty page tracking unsupported",
                st.name
            )));
        }
        // A running command that reaches the range later faults (WRITE_FAULT): the DMA
        // thread checks the maps under the same lock before every write.
        st.maps
            .unmap(address, size)
            .map(|_| ())
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", st.name)))
    }

    fn reset(&mut self) -> io::Result<()> {
        let mut st = self.device.lock();
        info!("{}: device reset", st.name);
        st.reset();
        Ok(())
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<()> {
        let mut st = self.device.lock();
        debug!(
            "{}: SET_IRQS index {index} flags {flags:#x} start {start} count {count} fds {}",
            st.name,
            fds.len()
        );
        let data = flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
        let action = flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
        let name = st.name.clone();
        let bad = |why: &str| einval(format!("{name}: SET_IRQS index {index}: {why}"));
        validate_set_irqs(index, flags, start, count, fds.len()).map_err(bad)?;
        if !apply_irqs(&mut st, index, action, data, count, fds) {
            return Err(bad("unsupported action"));
        }
        // A switch between INTx and MSI, or an unmask, may (re)assert INTx.
        st.update_intx();
        Ok(())
    }
}
