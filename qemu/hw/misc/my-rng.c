/*
 * my-rng: emulated PCI random number generator (PCI 1234:cafe)
 *
 * Register ABI 2.1; the first two registers (RNG at 0x0, SEED at 0x4) are
 * the v1 contract and must keep returning glibc random() numbers after a
 * seed, because guests compare them against known tables.  The register
 * map, the algorithms and the DMA engine are specified in spec/my-rng.rst
 * of the my-rng project.
 *
 * The DMA engine fills a list of guest memory segments from the generator
 * in the background: a QEMU_CLOCK_VIRTUAL timer writes one chunk per tick,
 * so no vCPU waits for a transfer and a stopped VM does no DMA.  It writes
 * only to guest RAM, checked in the bus-master address space before every
 * chunk, never to MMIO (its own BAR included) or ROM.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qemu/guest-random.h"
#include "qemu/bswap.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/msi.h"
#include "migration/vmstate.h"
#include "qom/object.h"
#include "hw/misc/my-rng.h"
#include "my-rng-gen.h"
#include "trace.h"

OBJECT_DECLARE_SIMPLE_TYPE(MyRngState, MY_RNG)

/* bytes generated and written per pci_dma_write() within a chunk */
#define MY_RNG_DMA_PIECE        4096
#define MY_RNG_DMA_STATUS_RSVD  0xf8u   /* DMA_STATUS bits 7..3 */

struct MyRngState {
    PCIDevice parent_obj;

    MemoryRegion mmio;
    QEMUTimer *dma_timer;

    uint32_t algo;
    uint32_t seed;              /* last value written to SEED */
    MyRngGen gen;

    /* DMA and interrupt registers */
    uint64_t dma_addr;          /* DMA_ADDR_HI:DMA_ADDR_LO */
    uint32_t dma_count;
    uint32_t dma_status;
    uint32_t dma_bytes;
    uint32_t irq_status;
    uint32_t irq_enable;

    /* The running command, latched at START; meaningful while BUSY */
    uint32_t dma_cmd;
    uint32_t dma_nsegs;
    uint64_t dma_seg_addr[MY_RNG_DMA_MAX_SEGS];
    uint32_t dma_seg_len[MY_RNG_DMA_MAX_SEGS];    /* flags were 0 */
    uint32_t dma_seg;           /* current segment = SEGS_DONE */
    uint32_t dma_seg_off;       /* bytes of it written */
    /* the unused bytes of the current output: dma_pend[dma_pend_pos..] */
    uint8_t dma_pend[sizeof(uint64_t)];
    uint32_t dma_pend_pos;
};

typedef struct MyRngReg {
    hwaddr offset;
    unsigned size;
    const char *name;
    bool readable;
    bool writable;
} MyRngReg;

#define MY_RNG_REG_ENTRY(name, off, sz, rd, wr) { off, sz, #name, rd, wr },

static const MyRngReg my_rng_regs[] = {
    MY_RNG_REGS(MY_RNG_REG_ENTRY)
};

/*
 * Decode an access.  Returns the register only for an access at its own
 * offset, of its own size and in its direction; anything else is a guest
 * error, logged here, and NULL is returned.  The memory core passes every
 * size and alignment through (see my_rng_ops), so this is the single place
 * that rejects bad accesses.  The checks follow the order of the spec's
 * regs::decode, so that both name the same fault.
 */
static const MyRngReg *my_rng_decode(hwaddr addr, unsigned size, bool write)
{
    const char *dir = write ? "write" : "read";
    const MyRngReg *r = NULL;
    size_t i;

    if (size != 1 && size != 2 && size != 4 && size != 8) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: %u-byte %s at 0x%03" HWADDR_PRIx
                      ": bad access size\n", TYPE_MY_RNG, size, dir, addr);
        return NULL;
    }
    if (addr >= MY_RNG_BAR_SIZE || size > MY_RNG_BAR_SIZE - addr) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: %u-byte %s at 0x%" HWADDR_PRIx
                      ": outside BAR0\n", TYPE_MY_RNG, size, dir, addr);
        return NULL;
    }
    for (i = 0; i < ARRAY_SIZE(my_rng_regs); i++) {
        if (addr >= my_rng_regs[i].offset &&
            addr < my_rng_regs[i].offset + my_rng_regs[i].size) {
            r = &my_rng_regs[i];
            break;
        }
    }
    if (!r) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: %u-byte %s at reserved offset 0x%03"
                      HWADDR_PRIx "\n", TYPE_MY_RNG, size, dir, addr);
        return NULL;
    }
    if (addr != r->offset) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: unaligned %u-byte %s at 0x%03"
                      HWADDR_PRIx " inside %s (0x%03" HWADDR_PRIx ")\n",
                      TYPE_MY_RNG, size, dir, addr, r->name, r->offset);
        return NULL;
    }
    if (size != r->size) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "%s: %u-byte %s of %u-byte register %s\n",
                      TYPE_MY_RNG, size, dir, r->size, r->name);
        return NULL;
    }
    if (write ? !r->writable : !r->readable) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: %s of %s register %s\n",
                      TYPE_MY_RNG, dir, write ? "read-only" : "write-only",
                      r->name);
        return NULL;
    }
    return r;
}

/* DMA engine and interrupts */

static const char *const my_rng_dma_err_names[] = {
    [MY_RNG_DMA_ERR_BAD_CMD] = "BAD_CMD",
    [MY_RNG_DMA_ERR_BAD_COUNT] = "BAD_COUNT",
    [MY_RNG_DMA_ERR_LIST_WRAP] = "LIST_WRAP",
    [MY_RNG_DMA_ERR_LIST_FAULT] = "LIST_FAULT",
    [MY_RNG_DMA_ERR_BAD_SEGMENT] = "BAD_SEGMENT",
    [MY_RNG_DMA_ERR_TOO_LONG] = "TOO_LONG",
    [MY_RNG_DMA_ERR_WRITE_FAULT] = "WRITE_FAULT",
    [MY_RNG_DMA_ERR_NO_MASTER] = "NO_MASTER",
    [MY_RNG_DMA_ERR_ABORTED] = "ABORTED",
};

static uint32_t my_rng_dma_state(const MyRngState *s)
{
    return s->dma_status & MY_RNG_DMA_STATE_MASK;
}

static bool my_rng_dma_busy(const MyRngState *s)
{
    return my_rng_dma_state(s) == MY_RNG_DMA_STATE_BUSY;
}

/* STATE, ERROR and SEGS_DONE from the engine; REJECTED is kept */
static void my_rng_dma_set_status(MyRngState *s, uint32_t state, uint32_t err)
{
    s->dma_status = (s->dma_status & MY_RNG_DMA_STATUS_REJECTED) | state |
                    err << MY_RNG_DMA_STATUS_ERROR_SHIFT |
                    s->dma_seg << MY_RNG_DMA_STATUS_SEGS_SHIFT;
}

static bool my_rng_bus_master(MyRngState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    return pci_get_word(pdev->config + PCI_COMMAND) & PCI_COMMAND_MASTER;
}

/* Whether [addr, addr + len) wraps past 2^64 (ending at 2^64 does not) */
static bool my_rng_wraps(uint64_t addr, uint64_t len)
{
    return len && addr + (len - 1) < addr;
}

/*
 * Whether [addr, addr + len) (len >= 1, not wrapping) is guest RAM in the
 * device's bus-master address space, so through a vIOMMU if there is one:
 * not unmapped, not ROM, not MMIO of any device, its own BAR included.
 * Only such ranges are accessed, which also keeps DMA from re-entering the
 * device's registers.
 */
static bool my_rng_dma_is_ram(MyRngState *s, uint64_t addr, uint64_t len,
                              bool is_write)
{
    AddressSpace *as = pci_get_address_space(PCI_DEVICE(s));

    RCU_READ_LOCK_GUARD();
    while (len) {
        hwaddr xlat, l = len;
        MemoryRegion *mr = address_space_translate(as, addr, &xlat, &l,
                                                   is_write,
                                                   MEMTXATTRS_UNSPECIFIED);

        if (!memory_region_is_ram(mr) || mr->readonly ||
            memory_region_is_ram_device(mr) || l == 0) {
            return false;
        }
        l = MIN(l, len);
        addr += l;
        len -= l;
    }
    return true;
}

/* INTA# follows IRQ_STATUS & IRQ_ENABLE unless MSI is on */
static void my_rng_update_intx(MyRngState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    int level = !msi_enabled(pdev) && (s->irq_status & s->irq_enable);

    trace_my_rng_irq_intx(s->irq_status, s->irq_enable, level);
    pci_set_irq(pdev, level);
}

/* The running command (or a refused START) ends: DONE if err is 0 */
static void my_rng_dma_end(MyRngState *s, uint32_t err)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    timer_del(s->dma_timer);
    my_rng_dma_set_status(s, err ? MY_RNG_DMA_STATE_ERROR :
                          MY_RNG_DMA_STATE_DONE, err);
    /* the unused bytes of the last output are dropped */
    s->dma_pend_pos = sizeof(s->dma_pend);
    if (err) {
        trace_my_rng_dma_error(err, s->dma_seg, s->dma_bytes);
        if (err != MY_RNG_DMA_ERR_ABORTED) {
            qemu_log_mask(LOG_GUEST_ERROR, "%s: DMA command failed: %s "
                          "(%u segments, %u bytes written)\n", TYPE_MY_RNG,
                          my_rng_dma_err_names[err], s->dma_seg,
                          s->dma_bytes);
        }
    } else {
        trace_my_rng_dma_done(s->dma_seg, s->dma_bytes);
    }
    s->irq_status |= MY_RNG_IRQ_DMA_DONE;
    if ((s->irq_enable & MY_RNG_IRQ_DMA_DONE) && msi_enabled(pdev)) {
        trace_my_rng_irq_msi();
        msi_notify(pdev, 0);
    }
    my_rng_update_intx(s);
}

/*
 * The checks of a START, in the spec's order; on success the list is
 * latched.  Returns 0 or the error code.  Nothing is written to guest
 * memory and the generator is untouched.
 */
static uint32_t my_rng_dma_validate(MyRngState *s, uint32_t cmd)
{
    g_autofree uint8_t *list = NULL;
    uint64_t list_len, total = 0;
    uint32_t i;

    if (cmd != MY_RNG_DMA_CMD_FILL && cmd != MY_RNG_DMA_CMD_FILL_HOST) {
        return MY_RNG_DMA_ERR_BAD_CMD;
    }
    if (!my_rng_bus_master(s)) {
        return MY_RNG_DMA_ERR_NO_MASTER;
    }
    if (s->dma_count == 0 || s->dma_count > MY_RNG_DMA_MAX_SEGS) {
        return MY_RNG_DMA_ERR_BAD_COUNT;
    }
    list_len = (uint64_t)s->dma_count * MY_RNG_DMA_SEG_SIZE;
    if (my_rng_wraps(s->dma_addr, list_len)) {
        return MY_RNG_DMA_ERR_LIST_WRAP;
    }
    list = g_malloc(list_len);
    if (!my_rng_dma_is_ram(s, s->dma_addr, list_len, false) ||
        pci_dma_read(PCI_DEVICE(s), s->dma_addr, list, list_len) !=
        MEMTX_OK) {
        return MY_RNG_DMA_ERR_LIST_FAULT;
    }
    for (i = 0; i < s->dma_count; i++) {
        const uint8_t *e = list + i * MY_RNG_DMA_SEG_SIZE;
        uint64_t addr = ldq_le_p(e + MY_RNG_DMA_SEG_ADDR);
        uint32_t len = ldl_le_p(e + MY_RNG_DMA_SEG_LEN);

        if (len == 0 || len > MY_RNG_DMA_MAX_BYTES ||
            ldl_le_p(e + MY_RNG_DMA_SEG_FLAGS) || my_rng_wraps(addr, len)) {
            return MY_RNG_DMA_ERR_BAD_SEGMENT;
        }
        s->dma_seg_addr[i] = addr;
        s->dma_seg_len[i] = len;
        total += len;
    }
    if (total > MY_RNG_DMA_MAX_BYTES) {
        return MY_RNG_DMA_ERR_TOO_LONG;
    }
    s->dma_cmd = cmd;
    s->dma_nsegs = s->dma_count;
    return 0;
}

static void my_rng_dma_arm(MyRngState *s)
{
    timer_mod(s->dma_timer,
              qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + MY_RNG_DMA_TICK_NS);
}

/* A DMA_CMD write */
static void my_rng_dma_command(MyRngState *s, uint32_t cmd)
{
    uint32_t err;

    if (my_rng_dma_busy(s)) {
        if (cmd == MY_RNG_DMA_CMD_ABORT) {
            trace_my_rng_dma_abort(s->dma_seg, s->dma_bytes);
            my_rng_dma_end(s, MY_RNG_DMA_ERR_ABORTED);
            return;
        }
        s->dma_status |= MY_RNG_DMA_STATUS_REJECTED;
        trace_my_rng_dma_rejected(cmd);
        qemu_log_mask(LOG_GUEST_ERROR, "%s: DMA_CMD 0x%x while a command "
                      "runs: rejected\n", TYPE_MY_RNG, cmd);
        return;
    }
    if (cmd == MY_RNG_DMA_CMD_ABORT) {
        return;     /* nothing to stop */
    }
    /* a new command: STATUS, REJECTED included, and DMA_BYTES start afresh */
    s->dma_seg = 0;
    s->dma_seg_off = 0;
    s->dma_bytes = 0;
    s->dma_pend_pos = sizeof(s->dma_pend);
    s->dma_status = MY_RNG_DMA_STATE_BUSY;
    err = my_rng_dma_validate(s, cmd);
    if (err) {
        my_rng_dma_end(s, err);
        return;
    }
    trace_my_rng_dma_start(cmd, s->dma_addr, s->dma_nsegs);
    my_rng_dma_arm(s);
}

/* Host entropy for FILL_HOST, and for FILL while ALGO is HOST */
static bool my_rng_dma_host(const MyRngState *s)
{
    return s->dma_cmd == MY_RNG_DMA_CMD_FILL_HOST ||
           s->algo == MY_RNG_ALGO_HOST;
}

static uint64_t my_rng_dma_next64(MyRngState *s)
{
    uint64_t v;

    if (s->dma_cmd == MY_RNG_DMA_CMD_FILL_HOST) {
        qemu_guest_getrandom_nofail(&v, sizeof(v));
        return v;
    }
    return my_rng_gen_next64(&s->gen, s->algo);
}

/*
 * The next len bytes of the command's byte stream: the little-endian bytes
 * of successive RNG64 outputs, continuous across segments and chunks.  An
 * output is drawn when its first byte is needed.
 */
static void my_rng_dma_stream(MyRngState *s, uint8_t *out, size_t len)
{
    size_t n = MIN(len, sizeof(s->dma_pend) - s->dma_pend_pos);

    memcpy(out, s->dma_pend + s->dma_pend_pos, n);
    s->dma_pend_pos += n;
    out += n;
    len -= n;
    if (my_rng_dma_host(s)) {
        /* any host bytes will do: fetch the whole outputs at once */
        n = QEMU_ALIGN_DOWN(len, sizeof(uint64_t));
        qemu_guest_getrandom_nofail(out, n);
        out += n;
        len -= n;
    }
    for (; len >= sizeof(uint64_t); len -= sizeof(uint64_t)) {
        stq_le_p(out, my_rng_dma_next64(s));
        out += sizeof(uint64_t);
    }
    if (len) {
        stq_le_p(s->dma_pend, my_rng_dma_next64(s));
        memcpy(out, s->dma_pend, len);
        s->dma_pend_pos = len;
    }
}

/*
 * Writes n bytes at the current position of the current segment.  Returns
 * false if the range is not RAM any more or the write failed.
 */
static bool my_rng_dma_write(MyRngState *s, uint32_t n)
{
    uint64_t addr = s->dma_seg_addr[s->dma_seg];
    uint32_t len = s->dma_seg_len[s->dma_seg];
    uint8_t buf[MY_RNG_DMA_PIECE];
    uint32_t k;

    /* a segment as a whole before its first byte, later what is written */
    if (s->dma_seg_off == 0) {
        trace_my_rng_dma_segment(s->dma_seg, addr, len);
        if (!my_rng_dma_is_ram(s, addr, len, true)) {
            return false;
        }
    } else if (!my_rng_dma_is_ram(s, addr + s->dma_seg_off, n, true)) {
        return false;
    }
    for (; n; n -= k) {
        k = MIN(n, sizeof(buf));
        my_rng_dma_stream(s, buf, k);
        if (pci_dma_write(PCI_DEVICE(s), addr + s->dma_seg_off, buf, k) !=
            MEMTX_OK) {
            return false;
        }
        s->dma_seg_off += k;
        s->dma_bytes += k;
    }
    return true;
}

/* One chunk of the running command */
static void my_rng_dma_tick(void *opaque)
{
    MyRngState *s = opaque;
    uint32_t budget = MY_RNG_DMA_CHUNK;

    if (!my_rng_dma_busy(s)) {
        return;
    }
    if (!my_rng_bus_master(s)) {
        my_rng_dma_end(s, MY_RNG_DMA_ERR_NO_MASTER);
        return;
    }
    while (budget) {
        uint32_t n = MIN(budget, s->dma_seg_len[s->dma_seg] - s->dma_seg_off);

        if (!my_rng_dma_write(s, n)) {
            my_rng_dma_end(s, MY_RNG_DMA_ERR_WRITE_FAULT);
            return;
        }
        budget -= n;
        if (s->dma_seg_off == s->dma_seg_len[s->dma_seg]) {
            s->dma_seg++;
            s->dma_seg_off = 0;
            if (s->dma_seg == s->dma_nsegs) {
                my_rng_dma_end(s, 0);
                return;
            }
            my_rng_dma_set_status(s, MY_RNG_DMA_STATE_BUSY, 0);
        }
    }
    my_rng_dma_arm(s);
}

static uint64_t my_rng_dma_read(MyRngState *s, hwaddr offset)
{
    switch (offset) {
    case MY_RNG_REG_DMA_ADDR_LO:
        return extract64(s->dma_addr, 0, 32);
    case MY_RNG_REG_DMA_ADDR_HI:
        return extract64(s->dma_addr, 32, 32);
    case MY_RNG_REG_DMA_COUNT:
        return s->dma_count;
    case MY_RNG_REG_DMA_STATUS:
        return s->dma_status;
    case MY_RNG_REG_DMA_BYTES:
        return s->dma_bytes;
    case MY_RNG_REG_DMA_MAX_SEGS:
        return MY_RNG_DMA_MAX_SEGS;
    case MY_RNG_REG_DMA_MAX_BYTES:
        return MY_RNG_DMA_MAX_BYTES;
    case MY_RNG_REG_IRQ_STATUS:
        return s->irq_status;
    case MY_RNG_REG_IRQ_ENABLE:
        return s->irq_enable;
    default:
        g_assert_not_reached();
    }
}

static void my_rng_dma_reg_write(MyRngState *s, hwaddr offset, uint32_t val)
{
    switch (offset) {
    case MY_RNG_REG_DMA_ADDR_LO:
        s->dma_addr = deposit64(s->dma_addr, 0, 32, val);
        break;
    case MY_RNG_REG_DMA_ADDR_HI:
        s->dma_addr = deposit64(s->dma_addr, 32, 32, val);
        break;
    case MY_RNG_REG_DMA_COUNT:
        s->dma_count = val;
        break;
    case MY_RNG_REG_DMA_CMD:
        my_rng_dma_command(s, val);
        break;
    case MY_RNG_REG_IRQ_STATUS:
        s->irq_status &= ~val;
        my_rng_update_intx(s);
        break;
    case MY_RNG_REG_IRQ_ENABLE:
        s->irq_enable = val & MY_RNG_IRQ_DMA_DONE;
        my_rng_update_intx(s);
        break;
    default:
        g_assert_not_reached();
    }
}

static uint64_t my_rng_read(void *opaque, hwaddr addr, unsigned size)
{
    MyRngState *s = opaque;
    const MyRngReg *r = my_rng_decode(addr, size, false);
    uint64_t val = 0;
    uint32_t v32;

    if (r) {
        switch (r->offset) {
        case MY_RNG_REG_RNG:
            val = my_rng_gen_next32(&s->gen, s->algo);
            break;
        case MY_RNG_REG_ID:
            val = MY_RNG_ID_VALUE;
            break;
        case MY_RNG_REG_FEATURES:
            val = MY_RNG_FEATURES_VALUE;
            break;
        case MY_RNG_REG_ALGO:
            val = s->algo;
            break;
        case MY_RNG_REG_ALGOS:
            val = MY_RNG_ALGOS_VALUE;
            break;
        case MY_RNG_REG_ENTROPY:
            /* never touches the algorithm state, so hwrng can't skew it */
            qemu_guest_getrandom_nofail(&v32, sizeof(v32));
            val = v32;
            break;
        case MY_RNG_REG_RNG64:
            val = my_rng_gen_next64(&s->gen, s->algo);
            break;
        default:
            val = my_rng_dma_read(s, r->offset);
            break;
        }
    }
    trace_my_rng_read(addr, size, val);
    return val;
}

static void my_rng_write(void *opaque, hwaddr addr, uint64_t val,
                         unsigned size)
{
    MyRngState *s = opaque;
    const MyRngReg *r;

    trace_my_rng_write(addr, size, val);
    r = my_rng_decode(addr, size, true);
    if (!r) {
        return;
    }

    switch (r->offset) {
    case MY_RNG_REG_SEED:
        s->seed = val;
        trace_my_rng_seed(s->algo, s->seed);
        my_rng_gen_seed(&s->gen, s->algo, s->seed);
        break;
    case MY_RNG_REG_ALGO:
        if (val >= MY_RNG_NUM_ALGOS) {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "%s: invalid ALGO %" PRIu64 " (ALGOS 0x%x)\n",
                          TYPE_MY_RNG, val, MY_RNG_ALGOS_VALUE);
            return;
        }
        s->algo = val;
        trace_my_rng_algo(s->algo, s->seed);
        my_rng_gen_seed(&s->gen, s->algo, s->seed);
        break;
    default:
        my_rng_dma_reg_write(s, r->offset, val);
        break;
    }
}

static const MemoryRegionOps my_rng_ops = {
    .read = my_rng_read,
    .write = my_rng_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    /*
     * Let every size and alignment through to my_rng_decode(), which logs
     * and rejects the bad ones; the core would otherwise drop or split
     * them silently.
     */
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
    },
};

static void my_rng_reset_state(MyRngState *s)
{
    s->algo = MY_RNG_ALGO_GLIBC;
    s->seed = 0;
    /* every algorithm gets a defined state, not only the selected one */
    my_rng_gen_seed_all(&s->gen, 0);

    /* a running command is dropped without an interrupt */
    timer_del(s->dma_timer);
    s->dma_addr = 0;
    s->dma_count = 0;
    s->dma_status = MY_RNG_DMA_STATE_IDLE;
    s->dma_bytes = 0;
    s->irq_status = 0;
    s->irq_enable = 0;
    s->dma_cmd = 0;
    s->dma_nsegs = 0;
    s->dma_seg = 0;
    s->dma_seg_off = 0;
    s->dma_pend_pos = sizeof(s->dma_pend);
    /* INTA# is deasserted by the PCI core's reset of the function */
}

static void my_rng_reset_enter(Object *obj, ResetType type)
{
    trace_my_rng_reset();
    my_rng_reset_state(MY_RNG(obj));
}

/*
 * Whether the DMA state from a migration stream is one the device can be
 * in: it is untrusted, and the running command's indices and lengths
 * select array slots and guest memory.
 */
static bool my_rng_dma_state_valid(const MyRngState *s)
{
    uint32_t state = my_rng_dma_state(s);
    uint32_t err = extract32(s->dma_status, MY_RNG_DMA_STATUS_ERROR_SHIFT, 8);
    uint64_t before = 0, total = 0;
    uint32_t i, pend;

    if ((s->dma_status & MY_RNG_DMA_STATUS_RSVD) ||
        (state == MY_RNG_DMA_STATE_ERROR) != (err != 0) ||
        err > MY_RNG_DMA_ERR_ABORTED ||
        s->dma_status >> MY_RNG_DMA_STATUS_SEGS_SHIFT > MY_RNG_DMA_MAX_SEGS ||
        (s->irq_status | s->irq_enable) & ~MY_RNG_IRQ_DMA_DONE ||
        s->dma_nsegs > MY_RNG_DMA_MAX_SEGS ||
        s->dma_pend_pos > sizeof(s->dma_pend)) {
        return false;
    }
    if (state != MY_RNG_DMA_STATE_BUSY) {
        return true;
    }
    if ((s->dma_cmd != MY_RNG_DMA_CMD_FILL &&
         s->dma_cmd != MY_RNG_DMA_CMD_FILL_HOST) ||
        s->dma_seg >= s->dma_nsegs ||
        s->dma_seg != s->dma_status >> MY_RNG_DMA_STATUS_SEGS_SHIFT) {
        return false;
    }
    for (i = 0; i < s->dma_nsegs; i++) {
        if (s->dma_seg_len[i] == 0 ||
            s->dma_seg_len[i] > MY_RNG_DMA_MAX_BYTES ||
            my_rng_wraps(s->dma_seg_addr[i], s->dma_seg_len[i])) {
            return false;
        }
        before += i < s->dma_seg ? s->dma_seg_len[i] : 0;
        total += s->dma_seg_len[i];
    }
    /* as many pending bytes as the last output drawn has left */
    pend = (sizeof(uint64_t) - s->dma_bytes % sizeof(uint64_t)) %
           sizeof(uint64_t);
    return total <= MY_RNG_DMA_MAX_BYTES &&
           s->dma_seg_off < s->dma_seg_len[s->dma_seg] &&
           s->dma_bytes == before + s->dma_seg_off &&
           sizeof(s->dma_pend) - s->dma_pend_pos == pend;
}

static int my_rng_post_load(void *opaque, int version_id)
{
    MyRngState *s = opaque;

    /* The stream is untrusted: algo and the indices select array slots */
    if (s->algo >= MY_RNG_NUM_ALGOS || !my_rng_gen_valid(&s->gen) ||
        !my_rng_dma_state_valid(s)) {
        return -EINVAL;
    }
    /* a command in flight resumes at the same byte */
    if (my_rng_dma_busy(s)) {
        my_rng_dma_arm(s);
    } else {
        timer_del(s->dma_timer);
    }
    return 0;
}

static const VMStateDescription vmstate_my_rng = {
    .name = TYPE_MY_RNG,
    .version_id = 2,
    .minimum_version_id = 1,
    .post_load = my_rng_post_load,
    /* not const: VMStateDescription.fields is non-const in 8.2 */
    .fields = (VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, MyRngState),
        VMSTATE_UINT32(algo, MyRngState),
        VMSTATE_UINT32(seed, MyRngState),
        VMSTATE_UINT32_ARRAY(gen.glibc.state, MyRngState, MY_RNG_GLIBC_DEG),
        VMSTATE_UINT32(gen.glibc.fidx, MyRngState),
        VMSTATE_UINT32(gen.glibc.ridx, MyRngState),
        VMSTATE_UINT64_ARRAY(gen.xoshiro.s, MyRngState, MY_RNG_XOSHIRO_WORDS),
        VMSTATE_UINT32_ARRAY(gen.chacha.key, MyRngState,
                             MY_RNG_CHACHA_KEY_WORDS),
        VMSTATE_UINT64(gen.chacha.counter, MyRngState),
        VMSTATE_UINT32_ARRAY(gen.chacha.block, MyRngState,
                             MY_RNG_CHACHA_BLOCK_WORDS),
        VMSTATE_UINT32(gen.chacha.pos, MyRngState),
        /* version 2: the DMA engine, after the fields of version 1 */
        VMSTATE_UINT64_V(dma_addr, MyRngState, 2),
        VMSTATE_UINT32_V(dma_count, MyRngState, 2),
        VMSTATE_UINT32_V(dma_status, MyRngState, 2),
        VMSTATE_UINT32_V(dma_bytes, MyRngState, 2),
        VMSTATE_UINT32_V(irq_status, MyRngState, 2),
        VMSTATE_UINT32_V(irq_enable, MyRngState, 2),
        VMSTATE_UINT32_V(dma_cmd, MyRngState, 2),
        VMSTATE_UINT32_V(dma_nsegs, MyRngState, 2),
        VMSTATE_UINT64_ARRAY_V(dma_seg_addr, MyRngState, MY_RNG_DMA_MAX_SEGS,
                               2),
        VMSTATE_UINT32_ARRAY_V(dma_seg_len, MyRngState, MY_RNG_DMA_MAX_SEGS,
                               2),
        VMSTATE_UINT32_V(dma_seg, MyRngState, 2),
        VMSTATE_UINT32_V(dma_seg_off, MyRngState, 2),
        VMSTATE_UINT8_ARRAY_V(dma_pend, MyRngState, sizeof(uint64_t), 2),
        VMSTATE_UINT32_V(dma_pend_pos, MyRngState, 2),
        VMSTATE_END_OF_LIST()
    },
};

/* A config write may switch MSI on or off: INTA# must follow */
static void my_rng_config_write(PCIDevice *pdev, uint32_t addr, uint32_t val,
                                int len)
{
    pci_default_write_config(pdev, addr, val, len);
    my_rng_update_intx(MY_RNG(pdev));
}

static void my_rng_realize(PCIDevice *pdev, Error **errp)
{
    MyRngState *s = MY_RNG(pdev);
    Error *err = NULL;
    int ret;

    /* one vector, 64-bit message address, no per-vector masking */
    ret = msi_init(pdev, 0, 1, true, false, &err);
    if (ret && ret != -ENOTSUP) {
        error_propagate(errp, err);
        return;
    }
    /* -ENOTSUP: the machine has no working MSI, INTA# still signals */
    error_free(err);
    pdev->config[PCI_INTERRUPT_PIN] = 1;

    s->dma_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, my_rng_dma_tick, s);
    my_rng_reset_state(s);
    memory_region_init_io(&s->mmio, OBJECT(s), &my_rng_ops, s,
                          "my_rng-mmio", MY_RNG_BAR_SIZE);
    pci_register_bar(pdev, 0, PCI_BASE_ADDRESS_SPACE_MEMORY, &s->mmio);
}

static void my_rng_exit(PCIDevice *pdev)
{
    MyRngState *s = MY_RNG(pdev);

    timer_free(s->dma_timer);
    s->dma_timer = NULL;
    msi_uninit(pdev);
}

/* class_init's data became const in QEMU 10.1 */
#if QEMU_VERSION_MAJOR > 10 || \
    (QEMU_VERSION_MAJOR == 10 && QEMU_VERSION_MINOR >= 1)
static void my_rng_class_init(ObjectClass *klass, const void *data)
#else
static void my_rng_class_init(ObjectClass *klass, void *data)
#endif
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = my_rng_realize;
    k->exit = my_rng_exit;
    k->config_write = my_rng_config_write;
    k->vendor_id = MY_RNG_VENDOR_ID;
    k->device_id = MY_RNG_DEVICE_ID;
    k->revision = MY_RNG_REVISION;
    k->class_id = MY_RNG_CLASS;

    /* the enter phase has had this signature since 5.0, unlike hold */
    rc->phases.enter = my_rng_reset_enter;
    dc->vmsd = &vmstate_my_rng;
    dc->desc = "my-rng PCI random number generator";
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo my_rng_info = {
    .name = TYPE_MY_RNG,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(MyRngState),
    .class_init = my_rng_class_init,
    /* not const: TypeInfo.interfaces is non-const in 8.2 */
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { },
    },
};

static void my_rng_register_types(void)
{
    type_register_static(&my_rng_info);
}

type_init(my_rng_register_types)
