/*
 * QTest testcase for the my-rng PCI random number generator: the storm
 *
 * A seeded random walk of at least STORM_ACCESSES accesses to BAR0 of one
 * my_rng device (every size, offset and direction; register writes of any
 * value; single and batched), with a second my_rng in the machine, the
 * virtual clock, bus mastering and MSI changing under it, and DMA commands
 * pointing anywhere: into the test's RAM buffers, the device's own BAR,
 * the other device's BAR, other MMIO, holes, ROM, the edges of RAM and
 * the top of the address space.
 *
 * What a DMA command does is not predicted here: every command is a case
 * of my-rng-storm-cases.h, which the spec crate generates with the verdict
 * of its DMA model (the error at START, or the end the command reaches,
 * DMA_BYTES, SEGS_DONE, and for some FILLs a digest of the bytes written).
 * A random write that would start a command gives way to the next case.
 * Registers are checked against the access rules (a read returns what the
 * register holds, an invalid access 0); guest RAM is laid out in known
 * bytes, so a write anywhere but in the test's buffers shows; every end
 * is checked for its MSI message or INTA# level.  MY_RNG_STORM_SEED and
 * MY_RNG_STORM_ACCESSES override the walk's seed and length to explore;
 * the defaults are what CI runs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "qemu/bswap.h"
#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/pci-pc.h"
#include "hw/pci/pci_regs.h"
#include "hw/misc/my-rng.h"
#include "my-rng-vectors.h"
#include "my-rng-qtest.h"
#include "my-rng-storm-cases.h"
/* QEMU 10.0 moved include/qapi/qmp/ to include/qobject/ */
#if QEMU_VERSION_MAJOR >= 10
#include "qobject/qdict.h"
#else
#include "qapi/qmp/qdict.h"
#endif

#define STORM_SEED              0x6d792d726e672131ULL
#define STORM_ACCESSES          1000000
#define STORM_CHECK_EVERY       50000
#define STORM_BG                0x5a    /* RAM the test never gives out */
#define PATTERN                 0xc3    /* guards */
#define STORM_MSI_DATA          0x4d52
#define STORM_BATCH_MAX         256
#define MIB                     0x100000
#define VEC_BYTES               (MY_RNG_VEC_COUNT * 8)
#define FIRST_SLOT              (ARRAY_SIZE(my_rng_storm_areas) - \
                                 MY_RNG_STORM_SLOTS)
/* Every PIIX3 PIRQ line goes to ISA IRQ 11, which the test watches */
#define INTX_IRQ                11
#define PIIX_PIRQ_ROUTE         0x60

typedef struct Seg {
    uint64_t addr;
    uint32_t len;
    uint32_t flags;
} Seg;

typedef struct Storm {
    QTestState *qts;
    QPCIBus *bus;
    MyRng a;                /* the device under the storm */
    MyRng b;                /* a second my_rng: nothing may touch it */
    uint64_t bar_a, bar_b;
    uint64_t base[MRS_PLACES];  /* the cases' places on this machine */
    uint8_t msi_cap;
    uint16_t msi_flags;     /* without PCI_MSI_FLAGS_ENABLE */
    uint64_t seed, prng, target_accesses;
    uint32_t b_next;        /* index of device B's next RNG vector value */

    /* the model of device A's registers */
    uint32_t algo, dma_count, status, bytes, irq_status, irq_enable;
    uint64_t dma_addr;
    bool bme, msi;
    /* the running command: its case, and its list as latched at START */
    const MyRngStormCase *run;
    uint32_t nsegs;
    Seg segs[MY_RNG_DMA_MAX_SEGS];
    /* the next case; while it is issued, its list (a DMA_CMD is its START) */
    uint32_t next_case;
    const MyRngStormCase *pending;
    uint32_t pending_n;
    Seg pending_segs[MY_RNG_DMA_MAX_SEGS];

    /* figures */
    uint64_t ops, reads, writes, batch_reads, batch_writes, batches;
    uint64_t cfg_writes, steps, bme_toggles, msi_toggles, msis, intx_checks;
    uint64_t started, ran, rejected, aborts, idle_aborts, replaced, checked;
    uint64_t done, errs[MY_RNG_DMA_ERR_ABORTED + 1];
    uint64_t guard_checks, ram_checked, next_check;
} Storm;

static uint64_t storm_rand(Storm *st)
{
    /* SplitMix64: small, and the same sequence on every host */
    uint64_t z = (st->prng += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t below(Storm *st, uint64_t n)
{
    return storm_rand(st) % n;
}

static bool chance(Storm *st, unsigned percent)
{
    return below(st, 100) < percent;
}

static uint64_t storm_accesses(const Storm *st)
{
    return st->reads + st->writes + st->batch_reads + st->batch_writes;
}

/* The model's view, for a failure's message */
static void storm_dump(const Storm *st)
{
    const MyRngStormCase *c = st->run;
    uint32_t i;

    g_test_message("model: algo %u, DMA_ADDR 0x%" PRIx64 ", DMA_COUNT %u, "
                   "DMA_STATUS 0x%x, DMA_BYTES %u, IRQ 0x%x/0x%x, BME %d, "
                   "MSI %d", st->algo, st->dma_addr, st->dma_count,
                   st->status, st->bytes, st->irq_status, st->irq_enable,
                   st->bme, st->msi);
    if (!c) {
        return;
    }
    g_test_message("last command: case %td: cmd 0x%x, list at %s+0x%" PRIx64
                   ", count %u; verdict: START error %u, end error %u, %u "
                   "bytes, %u segments", c - my_rng_storm_cases, c->cmd,
                   my_rng_storm_places[c->list_at].name, c->list_off,
                   c->count, c->start, c->end, c->bytes, c->segs);
    for (i = 0; i < c->nruns; i++) {
        const MyRngStormRun *r = &c->runs[i];

        g_test_message("  entries: %s+0x%" PRIx64 " len 0x%x flags 0x%x, "
                       "%u times, stride 0x%x", my_rng_storm_places[r->at].name,
                       r->off, r->len, r->flags, MAX(r->repeat, 1),
                       r->stride);
    }
    for (i = 0; i < st->nsegs && i < 16; i++) {
        g_test_message("  segment %u: 0x%" PRIx64 " +0x%x", i,
                       st->segs[i].addr, st->segs[i].len);
    }
}

static void storm_expect(Storm *st, const char *what, uint64_t got,
                         uint64_t want)
{
    if (got != want) {
        storm_dump(st);
        g_test_message("storm seed 0x%" PRIx64 ", op %" PRIu64 ": %s is 0x%"
                       PRIx64 ", expected 0x%" PRIx64, st->seed, st->ops,
                       what, got, want);
        g_assert_cmphex(got, ==, want);
    }
}

static void storm_expect_true(Storm *st, const char *what, bool ok)
{
    if (!ok) {
        storm_dump(st);
        g_test_message("storm seed 0x%" PRIx64 ", op %" PRIu64 ": %s",
                       st->seed, st->ops, what);
        g_assert_true(ok);
    }
}

/* Sets buf[i] = val for the bytes of [a, a + n) in [win, win + wlen) */
static void mark(uint64_t a, uint64_t n, uint64_t win, uint64_t wlen,
                 uint8_t *buf, uint8_t val)
{
    uint64_t lo = MAX(a, win), hi = MIN(a + n, win + wlen);

    if (lo < hi) {
        memset(buf + (lo - win), val, hi - lo);
    }
}

/* What RAM [addr, addr + len) must hold; any[i] set where anything goes */
static void storm_want_ram(uint64_t addr, uint64_t len, uint8_t *want,
                           uint8_t *any)
{
    const uint64_t guard = MY_RNG_STORM_GUARD;
    const uint64_t mbox = MY_RNG_STORM_MAILBOX;
    size_t k;

    memset(want, STORM_BG, len);
    for (k = 0; k < ARRAY_SIZE(my_rng_storm_areas); k++) {
        const MyRngStormArea *t = &my_rng_storm_areas[k];

        mark(t->addr - guard, guard, addr, len, want, PATTERN);
        mark(t->addr + t->len, guard, addr, len, want, PATTERN);
        mark(t->addr, t->len, addr, len, any, 1);
    }
    for (k = 0; k < ARRAY_SIZE(my_rng_storm_edges); k++) {
        mark(my_rng_storm_edges[k], MY_RNG_STORM_EDGE, addr, len, want,
             PATTERN);
    }
    mark(mbox - guard, guard, addr, len, want, PATTERN);
    mark(mbox + 4, guard, addr, len, want, PATTERN);
    mark(mbox, 4, addr, len, any, 1);
}

/*
 * Checks guest RAM [addr, addr + len) (RAM only) against what it must
 * hold: PATTERN in the guards and the edges, anything in the areas and
 * the mailbox (checked on its own), STORM_BG everywhere else.
 */
static void storm_check_ram(Storm *st, uint64_t addr, uint64_t len)
{
    g_autofree uint8_t *got = g_malloc(len);
    g_autofree uint8_t *want = g_malloc(len);
    g_autofree uint8_t *any = g_malloc0(len);
    uint64_t i;

    storm_want_ram(addr, len, want, any);
    qtest_bufread(st->qts, addr, got, len);
    for (i = 0; i < len; i++) {
        if (!any[i] && got[i] != want[i]) {
            g_test_message("storm seed 0x%" PRIx64 ", op %" PRIu64
                           ": RAM at 0x%" PRIx64 " is 0x%02x, expected "
                           "0x%02x: written outside the segments",
                           st->seed, st->ops, addr + i, got[i], want[i]);
            g_assert_cmphex(got[i], ==, want[i]);
        }
    }
    st->ram_checked += len;
}

/* Lays guest RAM out in the bytes storm_check_ram() expects */
static void storm_fill_ram(Storm *st)
{
    const uint64_t guard = MY_RNG_STORM_GUARD;
    size_t k;

    qtest_memset(st->qts, 0, STORM_BG, MY_RNG_STORM_LOW_RAM_END);
    qtest_memset(st->qts, MY_RNG_STORM_HIGH_RAM, STORM_BG,
                 MY_RNG_STORM_RAM_END - MY_RNG_STORM_HIGH_RAM);
    for (k = 0; k < ARRAY_SIZE(my_rng_storm_areas); k++) {
        const MyRngStormArea *t = &my_rng_storm_areas[k];

        qtest_memset(st->qts, t->addr - guard, PATTERN, t->len + 2 * guard);
        qtest_memset(st->qts, t->addr, 0, t->len);
    }
    for (k = 0; k < ARRAY_SIZE(my_rng_storm_edges); k++) {
        qtest_memset(st->qts, my_rng_storm_edges[k], PATTERN,
                     MY_RNG_STORM_EDGE);
    }
    qtest_memset(st->qts, MY_RNG_STORM_MAILBOX - guard, PATTERN,
                 4 + 2 * guard);
    qtest_writel(st->qts, MY_RNG_STORM_MAILBOX, 0);
}

/* INTA# is asserted while IRQ_STATUS & IRQ_ENABLE, unless MSI is on */
static void storm_check_intx(Storm *st)
{
    bool level = !st->msi && (st->irq_status & st->irq_enable);

    storm_expect(st, "INTA#", qtest_get_irq(st->qts, INTX_IRQ), level);
    st->intx_checks++;
}

/* Device B: still where the test left it, so no DMA of A reached it */
static void storm_check_b(Storm *st)
{
    const MyRngVector *v = vec_find(MY_RNG_ALGO_CHACHA20, 0x42, 32);

    if (st->b_next == MY_RNG_VEC_PREFIX) {
        wr32(&st->b, MY_RNG_REG_SEED, 0x42);
        st->b_next = 0;
    }
    storm_expect(st, "device B's RNG", rd32(&st->b, MY_RNG_REG_RNG),
                 v->prefix[st->b_next++]);
    storm_expect(st, "device B's ALGO", rd32(&st->b, MY_RNG_REG_ALGO),
                 MY_RNG_ALGO_CHACHA20);
    storm_expect(st, "device B's DMA_ADDR_LO",
                 rd32(&st->b, MY_RNG_REG_DMA_ADDR_LO), 0x5a5a5a5a);
    storm_expect(st, "device B's DMA_STATUS",
                 rd32(&st->b, MY_RNG_REG_DMA_STATUS), MY_RNG_DMA_STATE_IDLE);
    storm_expect(st, "device B's IRQ_ENABLE",
                 rd32(&st->b, MY_RNG_REG_IRQ_ENABLE), 1);
}

/* The guards around every area, the edges of RAM and the mailbox */
static void storm_check_guards(Storm *st)
{
    const uint64_t guard = MY_RNG_STORM_GUARD;
    size_t k;

    for (k = 0; k < ARRAY_SIZE(my_rng_storm_areas); k++) {
        const MyRngStormArea *t = &my_rng_storm_areas[k];

        storm_check_ram(st, t->addr - guard, guard);
        storm_check_ram(st, t->addr + t->len, guard);
    }
    for (k = 0; k < ARRAY_SIZE(my_rng_storm_edges); k++) {
        storm_check_ram(st, my_rng_storm_edges[k], MY_RNG_STORM_EDGE);
    }
    storm_check_ram(st, MY_RNG_STORM_MAILBOX - guard, 2 * guard + 4);
}

/* Every guard, the MSI mailbox, INTA#, device B and two samples of RAM */
static void storm_check(Storm *st)
{
    const uint64_t high = MY_RNG_STORM_HIGH_RAM;
    int i;

    storm_check_guards(st);
    storm_expect(st, "the MSI mailbox",
                 qtest_readl(st->qts, MY_RNG_STORM_MAILBOX), 0);
    storm_check_intx(st);
    for (i = 0; i < 2; i++) {
        uint64_t at = high + below(st, MY_RNG_STORM_RAM_END - high - 0x10000);

        storm_check_ram(st, at, 0x10000);
    }
    storm_check_b(st);
    st->guard_checks++;
}

/* Segments written completely within the first bytes of the command */
static uint32_t storm_segs_for(const Storm *st, uint32_t bytes)
{
    uint64_t pos = 0;
    uint32_t i;

    for (i = 0; i < st->nsegs && pos + st->segs[i].len <= bytes; i++) {
        pos += st->segs[i].len;
    }
    return i;
}

static uint32_t storm_state(const Storm *st)
{
    return st_state(st->status);
}

/* DMA_STATUS for a given state, error and progress; REJECTED is kept */
static uint32_t storm_status(const Storm *st, uint32_t state, uint32_t err,
                             uint32_t segs)
{
    return state | (st->status & MY_RNG_DMA_STATUS_REJECTED) |
           err << MY_RNG_DMA_STATUS_ERROR_SHIFT |
           segs << MY_RNG_DMA_STATUS_SEGS_SHIFT;
}

/* A command ended: IRQ_STATUS, one MSI message if MSI is on, INTA# */
static void storm_ended(Storm *st, uint32_t err)
{
    bool msi = st->msi && st->irq_enable && st->bme;

    st->irq_status = MY_RNG_IRQ_DMA_DONE;
    if (err) {
        st->errs[err]++;
    } else {
        st->done++;
    }
    storm_expect(st, "the MSI mailbox",
                 qtest_readl(st->qts, MY_RNG_STORM_MAILBOX),
                 msi ? STORM_MSI_DATA : 0);
    if (msi) {
        qtest_writel(st->qts, MY_RNG_STORM_MAILBOX, 0);
        st->msis++;
    }
    storm_check_intx(st);
}

/* Reads DMA_STATUS and DMA_BYTES; they must be what the model says */
static void storm_observe(Storm *st)
{
    storm_expect(st, "DMA_STATUS", rd32(&st->a, MY_RNG_REG_DMA_STATUS),
                 st->status);
    storm_expect(st, "DMA_BYTES", rd32(&st->a, MY_RNG_REG_DMA_BYTES),
                 st->bytes);
    st->reads += 2;
}

/* A START: what it does is the verdict of the case being issued */
static bool storm_case_start(Storm *st, uint32_t cmd, uint32_t *end_err)
{
    const MyRngStormCase *c = st->pending;

    storm_expect_true(st, "a START that is no case", c && cmd == c->cmd);
    st->started++;
    st->bytes = 0;
    st->status = 0;     /* REJECTED too starts afresh */
    st->run = c;
    st->nsegs = st->pending_n;
    memcpy(st->segs, st->pending_segs, st->nsegs * sizeof(Seg));
    if (c->start) {
        st->status = storm_status(st, MY_RNG_DMA_STATE_ERROR, c->start, 0);
        *end_err = c->start;
        return true;
    }
    /* the device copied the list the test wrote, no more, no less */
    storm_expect(st, "DMA_COUNT of a case that runs", c->count, st->nsegs);
    st->ran++;
    st->status = MY_RNG_DMA_STATE_BUSY;
    return false;
}

/*
 * The model's part of a DMA_CMD write, before it is done: what the
 * device must show afterwards.  Returns whether a command ends with it.
 */
static bool storm_cmd_before(Storm *st, uint32_t cmd, uint32_t *end_err)
{
    if (storm_state(st) == MY_RNG_DMA_STATE_BUSY) {
        if (cmd == MY_RNG_DMA_CMD_ABORT) {
            st->aborts++;
            st->status = storm_status(st, MY_RNG_DMA_STATE_ERROR,
                                      MY_RNG_DMA_ERR_ABORTED,
                                      storm_segs_for(st, st->bytes));
            *end_err = MY_RNG_DMA_ERR_ABORTED;
            return true;
        }
        st->rejected++;
        st->status |= MY_RNG_DMA_STATUS_REJECTED;
        return false;
    }
    if (cmd == MY_RNG_DMA_CMD_ABORT) {
        st->idle_aborts++;
        return false;
    }
    return storm_case_start(st, cmd, end_err);
}

/* After the DMA_CMD write: the device agrees, and the end is signalled */
static void storm_cmd_after(Storm *st, bool ends, uint32_t end_err)
{
    storm_observe(st);
    if (ends) {
        storm_ended(st, end_err);
    }
}

/*
 * The model's part of a valid write other than DMA_CMD (invalid writes
 * are ignored by the device and the model).
 */
static void storm_model_write(Storm *st, uint32_t off, uint64_t val)
{
    switch (off) {
    case MY_RNG_REG_ALGO:
        if (val < MY_RNG_NUM_ALGOS) {
            st->algo = val;
        }
        break;
    case MY_RNG_REG_DMA_ADDR_LO:
        st->dma_addr = deposit64(st->dma_addr, 0, 32, val);
        break;
    case MY_RNG_REG_DMA_ADDR_HI:
        st->dma_addr = deposit64(st->dma_addr, 32, 32, val);
        break;
    case MY_RNG_REG_DMA_COUNT:
        st->dma_count = val;
        break;
    case MY_RNG_REG_IRQ_STATUS:
        st->irq_status &= ~val;
        break;
    case MY_RNG_REG_IRQ_ENABLE:
        st->irq_enable = val & MY_RNG_IRQ_DMA_DONE;
        break;
    default:
        break;
    }
}

/* A read value against the model: 0 for an invalid access */
static void storm_check_read(Storm *st, uint32_t off, unsigned size,
                             uint64_t val)
{
    const struct {
        uint32_t off;
        const char *name;
        uint64_t val;
    } regs[] = {
        { MY_RNG_REG_ID, "ID", MY_RNG_ID_VALUE },
        { MY_RNG_REG_FEATURES, "FEATURES", MY_RNG_FEATURES_VALUE },
        { MY_RNG_REG_ALGO, "ALGO", st->algo },
        { MY_RNG_REG_ALGOS, "ALGOS", MY_RNG_ALGOS_VALUE },
        { MY_RNG_REG_DMA_ADDR_LO, "DMA_ADDR_LO", (uint32_t)st->dma_addr },
        { MY_RNG_REG_DMA_ADDR_HI, "DMA_ADDR_HI", st->dma_addr >> 32 },
        { MY_RNG_REG_DMA_COUNT, "DMA_COUNT", st->dma_count },
        { MY_RNG_REG_DMA_STATUS, "DMA_STATUS", st->status },
        { MY_RNG_REG_DMA_BYTES, "DMA_BYTES", st->bytes },
        { MY_RNG_REG_DMA_MAX_SEGS, "DMA_MAX_SEGS", MY_RNG_DMA_MAX_SEGS },
        { MY_RNG_REG_DMA_MAX_BYTES, "DMA_MAX_BYTES", MY_RNG_DMA_MAX_BYTES },
        { MY_RNG_REG_IRQ_STATUS, "IRQ_STATUS", st->irq_status },
        { MY_RNG_REG_IRQ_ENABLE, "IRQ_ENABLE", st->irq_enable },
    };
    bool glibc = st->algo == MY_RNG_ALGO_GLIBC;
    size_t i;

    if (!is_valid_access(off, size, false)) {
        storm_expect(st, "an invalid read", val, 0);
        return;
    }
    for (i = 0; i < ARRAY_SIZE(regs); i++) {
        if (off == regs[i].off) {
            storm_expect(st, regs[i].name, val, regs[i].val);
            return;
        }
    }
    /* RNG, RNG64: glibc outputs are 31 bits; ENTROPY: any value */
    if (off == MY_RNG_REG_RNG) {
        storm_expect(st, "RNG bit 31", glibc ? val >> 31 : 0, 0);
    } else if (off == MY_RNG_REG_RNG64) {
        storm_expect(st, "RNG64 bits 31, 63",
                     glibc ? val & 0x8000000080000000ULL : 0, 0);
    }
}

static uint64_t storm_read_single(Storm *st, uint32_t off, unsigned size)
{
    uint64_t addr = st->bar_a + off, val;

    switch (size) {
    case 1:
        val = qtest_readb(st->qts, addr);
        break;
    case 2:
        val = qtest_readw(st->qts, addr);
        break;
    case 4:
        val = qtest_readl(st->qts, addr);
        break;
    default:
        val = qtest_readq(st->qts, addr);
        break;
    }
    st->reads++;
    storm_check_read(st, off, size, val);
    return val;
}

static void storm_write_single(Storm *st, uint32_t off, unsigned size,
                               uint64_t val)
{
    uint64_t addr = st->bar_a + off;
    bool cmd = false, ends = false;
    uint32_t end_err = 0;

    /* the bus carries only the access's own bytes */
    val &= size == 8 ? UINT64_MAX : (1ULL << (8 * size)) - 1;
    if (is_valid_access(off, size, true)) {
        if (off == MY_RNG_REG_DMA_CMD) {
            cmd = true;
            ends = storm_cmd_before(st, val, &end_err);
        } else {
            storm_model_write(st, off, val);
        }
    }
    switch (size) {
    case 1:
        qtest_writeb(st->qts, addr, val);
        break;
    case 2:
        qtest_writew(st->qts, addr, val);
        break;
    case 4:
        qtest_writel(st->qts, addr, val);
        break;
    default:
        qtest_writeq(st->qts, addr, val);
        break;
    }
    st->writes++;
    if (cmd) {
        storm_cmd_after(st, ends, end_err);
    }
}

/*
 * Whether a write would START a command: DMA_CMD, any value but ABORT,
 * while nothing runs.  Only cases start commands: their verdicts come
 * from the spec's model, a random value's would have to be predicted.
 */
static bool storm_would_start(Storm *st, uint32_t off, unsigned size,
                              uint64_t val)
{
    return off == MY_RNG_REG_DMA_CMD && is_valid_access(off, size, true) &&
           (uint32_t)val != MY_RNG_DMA_CMD_ABORT &&
           storm_state(st) != MY_RNG_DMA_STATE_BUSY;
}

/*
 * The accesses one qtest read/write/memset of len bytes at off becomes:
 * the memory core splits it into the largest power-of-two pieces of at
 * most 8 bytes (the BAR takes unaligned accesses), so only the last
 * piece can be shorter than 8.
 */
static unsigned storm_pieces(uint32_t off, uint32_t len, uint32_t *poff,
                             unsigned *psize)
{
    unsigned n = 0;

    while (len) {
        unsigned size = len >= 8 ? 8 : len >= 4 ? 4 : len >= 2 ? 2 : 1;

        poff[n] = off;
        psize[n++] = size;
        off += size;
        len -= size;
    }
    return n;
}

/* One round trip, many reads: each piece is checked like a single read */
static void storm_batch_read(Storm *st, uint32_t off, uint32_t len)
{
    uint32_t poff[STORM_BATCH_MAX];
    unsigned psize[STORM_BATCH_MAX];
    uint8_t buf[STORM_BATCH_MAX];
    unsigned n, i;

    qtest_memread(st->qts, st->bar_a + off, buf, len);
    n = storm_pieces(off, len, poff, psize);
    for (i = 0; i < n; i++) {
        uint64_t val = 0;

        memcpy(&val, buf + (poff[i] - off), psize[i]);
        storm_check_read(st, poff[i], psize[i], le64_to_cpu(val));
    }
    st->batch_reads += n;
    st->batches++;
}

/*
 * One round trip, many writes: bytes, or one byte repeated (memset).  A
 * piece that would START a command is made an ABORT (a no-op then).
 */
static void storm_batch_write(Storm *st, uint32_t off, uint32_t len,
                              uint8_t *buf, bool memset_byte)
{
    uint32_t poff[STORM_BATCH_MAX];
    unsigned psize[STORM_BATCH_MAX];
    bool cmd = false, ends = false;
    uint32_t end_err = 0;
    unsigned n, i;

    n = storm_pieces(off, len, poff, psize);
    for (i = 0; i < n; i++) {
        uint8_t *p = buf + (poff[i] - off);
        uint64_t val = 0;

        if (!is_valid_access(poff[i], psize[i], true)) {
            continue;
        }
        memcpy(&val, p, psize[i]);
        val = le64_to_cpu(val);
        if (storm_would_start(st, poff[i], psize[i], val)) {
            stl_le_p(p, MY_RNG_DMA_CMD_ABORT);
            val = MY_RNG_DMA_CMD_ABORT;
            memset_byte = false;
            st->replaced++;
        }
        if (poff[i] == MY_RNG_REG_DMA_CMD) {
            /* only one piece can be 4 bytes: one command at most */
            cmd = true;
            ends = storm_cmd_before(st, val, &end_err);
        } else {
            storm_model_write(st, poff[i], val);
        }
    }
    if (memset_byte) {
        qtest_memset(st->qts, st->bar_a + off, buf[0], len);
    } else {
        qtest_memwrite(st->qts, st->bar_a + off, buf, len);
    }
    st->batch_writes += n;
    st->batches++;
    if (cmd) {
        storm_cmd_after(st, ends, end_err);
    }
}

/* A value worth writing to a register */
static uint64_t storm_value(Storm *st)
{
    static const uint64_t special[] = {
        0, 1, 2, 3, 4, 5, 7, 8, 0xff, 0xffff, 0x80000000, 0xffffffff,
        MY_RNG_DMA_MAX_SEGS, MY_RNG_DMA_MAX_SEGS + 1, MY_RNG_DMA_MAX_BYTES,
        UINT64_MAX,
    };

    switch (below(st, 4)) {
    case 0:
        return special[below(st, ARRAY_SIZE(special))];
    case 1:
        return below(st, 16);
    default:
        return storm_rand(st);
    }
}

/* An offset and size anywhere in the BAR, often at or near a register */
static void storm_pick_access(Storm *st, uint32_t *off, unsigned *size)
{
    static const unsigned sizes[] = { 1, 2, 4, 8 };
    const RegAccess *r = &reg_map[below(st, ARRAY_SIZE(reg_map))];

    *size = sizes[below(st, ARRAY_SIZE(sizes))];
    switch (below(st, 5)) {
    case 0:
    case 1:
        *off = r->offset;
        if (chance(st, 70)) {
            *size = r->size;
        }
        break;
    case 2:
        *off = r->offset + 1 + below(st, 7);
        break;
    default:
        *off = below(st, MY_RNG_BAR_SIZE);
        break;
    }
    *off = MIN(*off, MY_RNG_BAR_SIZE - *size);
}

static void storm_op_case(Storm *st);

static void storm_op_single(Storm *st)
{
    uint32_t off;
    unsigned size;
    uint64_t val;

    storm_pick_access(st, &off, &size);
    if (chance(st, 50)) {
        storm_read_single(st, off, size);
        return;
    }
    val = storm_value(st);
    if (storm_would_start(st, off, size, val)) {
        /* a START: the next case's, whose verdict is known */
        st->replaced++;
        storm_op_case(st);
        return;
    }
    storm_write_single(st, off, size, val);
}

static void storm_op_batch(Storm *st, bool write)
{
    uint8_t buf[STORM_BATCH_MAX];
    uint32_t off, len, i;

    /* the register block often, the rest of the BAR too */
    off = chance(st, 60) ? below(st, 0x80) : below(st, MY_RNG_BAR_SIZE);
    if (chance(st, 30)) {
        off &= ~7u;
    }
    len = 1 + below(st, write ? 64 : STORM_BATCH_MAX);
    len = MIN(len, MY_RNG_BAR_SIZE - off);
    if (!write) {
        storm_batch_read(st, off, len);
        return;
    }
    for (i = 0; i < len; i++) {
        buf[i] = storm_rand(st);
    }
    if (chance(st, 30)) {
        memset(buf, buf[0], len);
        storm_batch_write(st, off, len, buf, true);
    } else {
        storm_batch_write(st, off, len, buf, false);
    }
}

static void storm_op_algo_seed(Storm *st)
{
    if (chance(st, 50)) {
        storm_write_single(st, MY_RNG_REG_SEED, 4, storm_rand(st));
    } else if (chance(st, 80)) {
        storm_write_single(st, MY_RNG_REG_ALGO, 4,
                           below(st, MY_RNG_NUM_ALGOS));
    } else {
        storm_write_single(st, MY_RNG_REG_ALGO, 4, storm_value(st));
    }
}

/* The end of a command that ran: the case's verdict, or a stop */
static void storm_step_end(Storm *st, uint32_t status, uint32_t bytes)
{
    const MyRngStormCase *c = st->run;
    uint32_t err = st_error(status);

    if (err == MY_RNG_DMA_ERR_NO_MASTER) {
        storm_expect_true(st, "NO_MASTER with BME on", !st->bme);
        st->status = storm_status(st, MY_RNG_DMA_STATE_ERROR, err,
                                  storm_segs_for(st, bytes));
    } else {
        /* the end nothing stopped: the spec model's */
        storm_expect(st, "DMA_BYTES at the end", bytes, c->bytes);
        st->status = storm_status(st, c->end ? MY_RNG_DMA_STATE_ERROR :
                                  MY_RNG_DMA_STATE_DONE, c->end, c->segs);
    }
    storm_expect(st, "DMA_STATUS at the end", status, st->status);
    storm_ended(st, err);
}

/* Runs the virtual clock; the device must have done what the model says */
static void storm_step(Storm *st, int64_t ns)
{
    uint32_t old = st->bytes, status, bytes;
    bool busy = storm_state(st) == MY_RNG_DMA_STATE_BUSY;

    qtest_clock_step(st->qts, ns);
    st->steps++;
    if (!busy) {
        /* nothing runs: nothing may change */
        storm_observe(st);
        return;
    }
    status = rd32(&st->a, MY_RNG_REG_DMA_STATUS);
    bytes = rd32(&st->a, MY_RNG_REG_DMA_BYTES);
    st->reads += 2;
    storm_expect_true(st, "DMA_BYTES went back", bytes >= old);
    storm_expect_true(st, "DMA_BYTES past the end", bytes <= st->run->bytes);
    st->bytes = bytes;
    if (st_state(status) != MY_RNG_DMA_STATE_BUSY) {
        storm_step_end(st, status, bytes);
        return;
    }
    st->status = storm_status(st, MY_RNG_DMA_STATE_BUSY, 0,
                              storm_segs_for(st, bytes));
    storm_expect(st, "DMA_STATUS while BUSY", status, st->status);
    /* a tick was due: it must have stopped or moved the command */
    storm_expect_true(st, "no chunk was due or BME is on",
                      ns < MY_RNG_DMA_TICK_NS || st->bme);
    storm_expect_true(st, "a command made no progress",
                      ns < MY_RNG_DMA_TICK_NS || bytes > old);
}

static void storm_op_step(Storm *st)
{
    switch (below(st, 5)) {
    case 0:
    case 1:
        storm_step(st, MY_RNG_DMA_TICK_NS);
        break;
    case 2:
        storm_step(st, 1 + below(st, MY_RNG_DMA_TICK_NS - 1));
        break;
    case 3:
        storm_step(st, MY_RNG_DMA_TICK_NS * (2 + below(st, 19)));
        break;
    default:
        storm_step(st, 1 + below(st, 1000000));
        break;
    }
}

/* Runs the clock until the command ends: it must, within its chunks */
static void storm_settle(Storm *st)
{
    int i;

    for (i = 0; storm_state(st) == MY_RNG_DMA_STATE_BUSY; i++) {
        storm_expect_true(st, "a command never ends",
                          i <= MY_RNG_DMA_MAX_BYTES / MY_RNG_DMA_CHUNK);
        storm_step(st, MY_RNG_DMA_TICK_NS);
    }
}

static void storm_toggle_bme(Storm *st)
{
    uint16_t cmd = qpci_config_readw(st->a.dev, PCI_COMMAND);

    st->bme = !st->bme;
    qpci_config_writew(st->a.dev, PCI_COMMAND, st->bme ?
                       cmd | PCI_COMMAND_MASTER : cmd & ~PCI_COMMAND_MASTER);
    st->bme_toggles++;
    st->cfg_writes++;
}

/*
 * The case's list entries, expanded into st->pending_segs; written into
 * guest memory when the list is in RAM (the generator keeps it in a slot
 * there; anywhere else the device must not find RAM to read).
 */
static void storm_put_list(Storm *st, const MyRngStormCase *c)
{
    uint8_t e[MY_RNG_DMA_MAX_SEGS * MY_RNG_DMA_SEG_SIZE];
    uint32_t n = 0, i, k;

    for (i = 0; i < c->nruns; i++) {
        const MyRngStormRun *r = &c->runs[i];
        uint64_t addr = st->base[r->at] + r->off;

        for (k = 0; k < MAX(r->repeat, 1); k++, n++) {
            Seg *s = &st->pending_segs[n];
            uint8_t *p = e + n * MY_RNG_DMA_SEG_SIZE;

            g_assert_cmpuint(n, <, MY_RNG_DMA_MAX_SEGS);
            *s = (Seg) { addr + (uint64_t)k * r->stride, r->len, r->flags };
            stq_le_p(p + MY_RNG_DMA_SEG_ADDR, s->addr);
            stl_le_p(p + MY_RNG_DMA_SEG_LEN, s->len);
            stl_le_p(p + MY_RNG_DMA_SEG_FLAGS, s->flags);
        }
    }
    st->pending_n = n;
    if (c->list_at == MRS_RAM && n) {
        qtest_memwrite(st->qts, st->base[MRS_RAM] + c->list_off, e,
                       n * MY_RNG_DMA_SEG_SIZE);
    }
}

/*
 * A checked FILL runs to its end alone (nothing else draws outputs), and
 * then its complete segments hold the bytes the model computed, and the
 * next RNG64 read returns the output after them.
 */
static void storm_check_fill(Storm *st, const MyRngStormCase *c)
{
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    uint8_t digest[32];
    gsize dlen = sizeof(digest);
    uint32_t i;

    storm_settle(st);
    for (i = 0; i < c->segs; i++) {
        g_autofree uint8_t *b = g_malloc(st->segs[i].len);

        /* base64 (b64read) is the denser of qtest's read encodings */
        qtest_bufread(st->qts, st->segs[i].addr, b, st->segs[i].len);
        g_checksum_update(sum, b, st->segs[i].len);
    }
    g_checksum_get_digest(sum, digest, &dlen);
    storm_expect(st, "the FILL's bytes (SHA-256, first 8 bytes)",
                 ldq_be_p(digest), c->check.sha);
    storm_expect(st, "RNG64 after the FILL",
                 storm_read_single(st, MY_RNG_REG_RNG64, 8),
                 c->check.next64);
    st->checked++;
}

/*
 * The next case: bus mastering as it says, ALGO and SEED for a checked
 * FILL, its list, the registers, the command.  While a command runs the
 * command is refused and the case comes again next time.
 */
static void storm_op_case(Storm *st)
{
    const MyRngStormCase *c = &my_rng_storm_cases[st->next_case];
    uint64_t list = st->base[c->list_at] + c->list_off;
    bool busy;

    if (storm_state(st) == MY_RNG_DMA_STATE_BUSY && chance(st, 60)) {
        storm_settle(st);
    }
    busy = storm_state(st) == MY_RNG_DMA_STATE_BUSY;
    if (st->bme != !!c->bme) {
        storm_toggle_bme(st);
    }
    if (c->check.on && !busy) {
        storm_write_single(st, MY_RNG_REG_ALGO, 4, c->check.algo);
        storm_write_single(st, MY_RNG_REG_SEED, 4, c->check.seed);
    }
    storm_put_list(st, c);
    storm_write_single(st, MY_RNG_REG_DMA_ADDR_LO, 4, list);
    storm_write_single(st, MY_RNG_REG_DMA_ADDR_HI, 4, list >> 32);
    storm_write_single(st, MY_RNG_REG_DMA_COUNT, 4, c->count);
    st->pending = c;
    storm_write_single(st, MY_RNG_REG_DMA_CMD, 4, c->cmd);
    st->pending = NULL;
    if (busy) {
        return;
    }
    st->next_case = (st->next_case + 1) % MY_RNG_STORM_NCASES;
    if (c->check.on) {
        storm_check_fill(st, c);
    }
}

static void storm_op_irq(Storm *st)
{
    if (chance(st, 50)) {
        storm_write_single(st, MY_RNG_REG_IRQ_ENABLE, 4,
                           chance(st, 70) ? below(st, 2) : storm_rand(st));
    } else {
        storm_write_single(st, MY_RNG_REG_IRQ_STATUS, 4,
                           chance(st, 70) ? below(st, 2) : storm_rand(st));
    }
    storm_check_intx(st);
}

static void storm_toggle_msi(Storm *st)
{
    st->msi = !st->msi;
    qpci_config_writew(st->a.dev, st->msi_cap + PCI_MSI_FLAGS,
                       st->msi_flags | (st->msi ? PCI_MSI_FLAGS_ENABLE : 0));
    st->msi_toggles++;
    st->cfg_writes++;
    storm_check_intx(st);
}

static void storm_collect(QPCIDevice *dev, int devfn, void *data)
{
    QPCIDevice **found = data;

    g_assert_null(found[1]);
    found[found[0] ? 1 : 0] = dev;
}

/* Maps both devices: A is the first (lower devfn), B the second */
static void storm_map(Storm *st)
{
    QPCIDevice *found[2] = { NULL, NULL };
    uint64_t size;

    st->bus = qpci_new_pc(st->qts, NULL);
    qpci_device_foreach(st->bus, MY_RNG_VENDOR_ID, MY_RNG_DEVICE_ID,
                        storm_collect, found);
    g_assert_nonnull(found[1]);
    g_assert_cmpint(found[0]->devfn, <, found[1]->devfn);
    st->a = (MyRng) { .qts = st->qts, .bus = st->bus, .dev = found[0] };
    st->b = (MyRng) { .qts = st->qts, .bus = st->bus, .dev = found[1] };
    qpci_device_enable(st->a.dev);
    qpci_device_enable(st->b.dev);
    st->a.bar = qpci_iomap(st->a.dev, 0, &size);
    st->a.bar_size = size;
    st->b.bar = qpci_iomap(st->b.dev, 0, &size);
    st->b.bar_size = size;
    st->bar_a = bar0_addr(&st->a);
    st->bar_b = bar0_addr(&st->b);
    g_assert_cmphex(st->bar_a, ==, st->a.bar.addr);
}

static void storm_unmap(Storm *st)
{
    g_free(st->a.dev);
    g_free(st->b.dev);
    qpci_free_pc(st->bus);
}

/*
 * The cases' places on this machine: the header's, and the BARs where
 * the machine put them; the model's verdicts hold for BARs anywhere in
 * the PCI window, so they must be there.
 */
static void storm_places(Storm *st)
{
    const uint64_t bars[] = { st->bar_a, st->bar_b };
    unsigned i;

    for (i = 0; i < MRS_PLACES; i++) {
        st->base[i] = my_rng_storm_places[i].base;
    }
    st->base[MRS_BAR_A] = st->bar_a;
    st->base[MRS_BAR_B] = st->bar_b;
    for (i = 0; i < ARRAY_SIZE(bars); i++) {
        g_assert_cmphex(bars[i], >=, MY_RNG_STORM_PCI_WINDOW);
        g_assert_cmphex(bars[i] + MY_RNG_BAR_SIZE, <=,
                        MY_RNG_STORM_PCI_WINDOW_END);
    }
}

/* Routes every PIRQ line to INTX_IRQ and watches the IOAPIC */
static void storm_intx_setup(Storm *st)
{
    QPCIDevice *piix = qpci_device_find(st->bus, QPCI_DEVFN(1, 0));
    int i;

    g_assert_nonnull(piix);
    for (i = 0; i < 4; i++) {
        qpci_config_writeb(piix, PIIX_PIRQ_ROUTE + i, INTX_IRQ);
    }
    g_free(piix);
    qtest_irq_intercept_in(st->qts, "ioapic");
}

/* A's MSI goes to the mailbox when enabled */
static void storm_msi_setup(Storm *st)
{
    QPCIDevice *dev = st->a.dev;

    st->msi_cap = qpci_find_capability(dev, PCI_CAP_ID_MSI, 0);
    g_assert_cmpuint(st->msi_cap, !=, 0);
    st->msi_flags = qpci_config_readw(dev, st->msi_cap + PCI_MSI_FLAGS);
    qpci_config_writel(dev, st->msi_cap + PCI_MSI_ADDRESS_LO,
                       MY_RNG_STORM_MAILBOX);
    qpci_config_writel(dev, st->msi_cap + PCI_MSI_ADDRESS_HI, 0);
    qpci_config_writew(dev, st->msi_cap + PCI_MSI_DATA_64, STORM_MSI_DATA);
}

static void storm_setup(Storm *st)
{
    const char *seed = g_getenv("MY_RNG_STORM_SEED");
    const char *count = g_getenv("MY_RNG_STORM_ACCESSES");

    memset(st, 0, sizeof(*st));
    st->seed = seed ? g_ascii_strtoull(seed, NULL, 0) : STORM_SEED;
    st->target_accesses = count ? g_ascii_strtoull(count, NULL, 0) :
                                  STORM_ACCESSES;
    st->prng = st->seed;
    /* the machine the cases' model describes */
    st->qts = qtest_initf("-nodefaults -m %uM -device my_rng -device my_rng",
                          MY_RNG_STORM_RAM_MB);
    storm_map(st);
    storm_places(st);
    storm_intx_setup(st);
    storm_fill_ram(st);

    /* device B: seeded, a few values read, registers set, then left */
    set_algo_seed(&st->b, MY_RNG_ALGO_CHACHA20, 0x42);
    wr32(&st->b, MY_RNG_REG_DMA_ADDR_LO, 0x5a5a5a5a);
    wr32(&st->b, MY_RNG_REG_IRQ_ENABLE, 1);
    storm_check_b(st);

    storm_msi_setup(st);
    st->bme = true;
    st->algo = MY_RNG_ALGO_GLIBC;
    st->next_check = STORM_CHECK_EVERY;
    storm_observe(st);
    storm_check_intx(st);
}

static void storm_summary(Storm *st)
{
    g_autoptr(GString) errs = g_string_new("");
    unsigned i;

    for (i = 1; i <= MY_RNG_DMA_ERR_ABORTED; i++) {
        g_string_append_printf(errs, "%s%u:%" PRIu64, i > 1 ? " " : "", i,
                               st->errs[i]);
    }
    g_test_message("storm: seed 0x%" PRIx64 ": %" PRIu64 " accesses (%"
                   PRIu64 " reads, %" PRIu64 " writes one per round trip; %"
                   PRIu64 " reads, %" PRIu64 " writes in %" PRIu64
                   " batches); DMA: %" PRIu64 " commands started (cases of "
                   "the spec model, %u of them, seed 0x%" PRIx64 "; %" PRIu64
                   " in place of random STARTs), %" PRIu64 " ran, %" PRIu64
                   " done, errors by code {%s}, %" PRIu64 " FILLs' bytes "
                   "checked, %" PRIu64 " rejected, %" PRIu64 " idle ABORTs, %"
                   PRIu64 " MSI messages, %" PRIu64 " INTx checks; %" PRIu64
                   " clock steps, %" PRIu64 " BME and %" PRIu64 " MSI toggles;"
                   " %" PRIu64 " guard checks, %" PRIu64 " MiB of RAM compared",
                   st->seed, storm_accesses(st), st->reads, st->writes,
                   st->batch_reads, st->batch_writes, st->batches,
                   st->started, MY_RNG_STORM_NCASES,
                   (uint64_t)MY_RNG_STORM_SEED,
                   st->replaced, st->ran, st->done, errs->str, st->checked,
                   st->rejected, st->idle_aborts, st->msis, st->intx_checks,
                   st->steps, st->bme_toggles, st->msi_toggles,
                   st->guard_checks, st->ram_checked / MIB);
}

/* An 8000-byte FILL (one segment, in the first big area) is the block */
static void storm_fill_vector(Storm *st, const MyRngVector *v64)
{
    const uint64_t list = my_rng_storm_areas[FIRST_SLOT].addr;
    const uint64_t buf = my_rng_storm_areas[1].addr + 3;
    g_autofree uint8_t *got = g_malloc(VEC_BYTES);
    g_autofree char *hex = NULL;
    uint8_t e[MY_RNG_DMA_SEG_SIZE];
    int i;

    stq_le_p(e + MY_RNG_DMA_SEG_ADDR, buf);
    stl_le_p(e + MY_RNG_DMA_SEG_LEN, VEC_BYTES);
    stl_le_p(e + MY_RNG_DMA_SEG_FLAGS, 0);
    qtest_memwrite(st->qts, list, e, sizeof(e));
    wr32(&st->a, MY_RNG_REG_SEED, v64->seed);
    wr32(&st->a, MY_RNG_REG_DMA_ADDR_LO, list);
    wr32(&st->a, MY_RNG_REG_DMA_ADDR_HI, 0);
    wr32(&st->a, MY_RNG_REG_DMA_COUNT, 1);
    wr32(&st->a, MY_RNG_REG_DMA_CMD, MY_RNG_DMA_CMD_FILL);
    for (i = 0; i < 10 && st_state(rd32(&st->a, MY_RNG_REG_DMA_STATUS)) ==
                MY_RNG_DMA_STATE_BUSY; i++) {
        qtest_clock_step(st->qts, MY_RNG_DMA_TICK_NS);
    }
    g_assert_cmphex(rd32(&st->a, MY_RNG_REG_DMA_STATUS), ==,
                    MY_RNG_DMA_STATE_DONE | 1 << MY_RNG_DMA_STATUS_SEGS_SHIFT);
    qtest_memread(st->qts, buf, got, VEC_BYTES);
    for (i = 0; i < MY_RNG_VEC_PREFIX; i++) {
        g_assert_cmphex(ldq_le_p(got + 8 * i), ==, v64->prefix[i]);
    }
    hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, got, VEC_BYTES);
    g_assert_cmpstr(hex, ==, v64->sha256);
}

/* After the storm: every algorithm replays its vectors, by MMIO and DMA */
static void storm_replay(Storm *st)
{
    uint32_t algo;

    if (!st->bme) {
        storm_toggle_bme(st);
    }
    if (st->msi) {
        storm_toggle_msi(st);
    }
    wr32(&st->a, MY_RNG_REG_IRQ_ENABLE, 0);
    wr32(&st->a, MY_RNG_REG_IRQ_STATUS, MY_RNG_IRQ_DMA_DONE);
    for (algo = MY_RNG_ALGO_GLIBC; algo <= MY_RNG_ALGO_CHACHA20; algo++) {
        set_algo_seed(&st->a, algo, 0x42);
        check_vector(&st->a, vec_find(algo, 0x42, 32));
        wr32(&st->a, MY_RNG_REG_SEED, 0x42);
        check_vector(&st->a, vec_find(algo, 0x42, 64));
        storm_fill_vector(st, vec_find(algo, 0x42, 64));
    }
    storm_check_guards(st);
}

/* One step of the random walk */
static void storm_op(Storm *st)
{
    unsigned k = below(st, 1000);

    st->ops++;
    if (k < 560) {
        storm_op_single(st);
    } else if (k < 620) {
        storm_op_batch(st, false);
    } else if (k < 660) {
        storm_op_batch(st, true);
    } else if (k < 700) {
        storm_op_algo_seed(st);
    } else if (k < 820) {
        storm_op_case(st);
    } else if (k < 840) {
        storm_write_single(st, MY_RNG_REG_DMA_CMD, 4, MY_RNG_DMA_CMD_ABORT);
    } else if (k < 940) {
        storm_op_step(st);
    } else if (k < 955) {
        storm_toggle_bme(st);
    } else if (k < 965) {
        storm_toggle_msi(st);
    } else {
        storm_op_irq(st);
    }
}

/* The storm is over: the last command ends, nothing was written wrongly */
static void storm_final_checks(Storm *st)
{
    const uint64_t high = MY_RNG_STORM_HIGH_RAM;
    uint64_t k;

    storm_settle(st);
    storm_expect(st, "ID after the storm", rd32(&st->a, MY_RNG_REG_ID),
                 MY_RNG_ID_VALUE);
    storm_check(st);
    storm_check_ram(st, 0, MY_RNG_STORM_LOW_RAM_END);
    for (k = 0; k < (MY_RNG_STORM_RAM_END - high) / MIB; k++) {
        storm_check_ram(st, high + k * MIB, MIB);
    }
}

static void test_dma_storm(void)
{
    g_autofree Storm *st = g_new(Storm, 1);
    QDict *rsp;
    int64_t t0 = g_get_monotonic_time();

    storm_setup(st);
    g_test_message("storm: seed 0x%" PRIx64 ", %" PRIu64 " accesses",
                   st->seed, st->target_accesses);
    while (storm_accesses(st) < st->target_accesses) {
        if (storm_accesses(st) >= st->next_check) {
            storm_check(st);
            st->next_check += STORM_CHECK_EVERY;
        }
        storm_op(st);
    }
    storm_final_checks(st);
    storm_summary(st);
    g_test_message("storm: %.1f s", (g_get_monotonic_time() - t0) / 1e6);

    /* the device still works: reseeded, and after a reset */
    storm_replay(st);
    rsp = qtest_qmp(st->qts, "{ 'execute': 'system_reset' }");
    g_assert_false(qdict_haskey(rsp, "error"));
    qobject_unref(rsp);
    qtest_qmp_eventwait(st->qts, "RESET");
    storm_unmap(st);
    storm_map(st);
    check_vector(&st->a, vec_find(MY_RNG_ALGO_GLIBC, 0, 32));
    storm_unmap(st);
    qtest_quit(st->qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/my-rng/dma/storm", test_dma_storm);
    return g_test_run();
}
