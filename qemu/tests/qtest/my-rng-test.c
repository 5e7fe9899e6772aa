/*
 * QTest testcase for the my-rng PCI random number generator
 *
 * The deterministic algorithms are checked against the project's test
 * vectors (my-rng-vectors.h, generated from spec/vectors/); the v1 tables
 * of the original exercise are hard-wired here because they are the device's
 * oldest contract.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <glib/gstdio.h>
#include "qemu/bitops.h"
#include "qemu/bswap.h"
#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/pci-pc.h"
#include "hw/pci/pci_regs.h"
#include "hw/misc/my-rng.h"
#include "my-rng-vectors.h"
/* QEMU 10.0 moved include/qapi/qmp/ to include/qobject/ */
#if QEMU_VERSION_MAJOR >= 10
#include "qobject/qdict.h"
#else
#include "qapi/qmp/qdict.h"
#endif

/* The exercise's tables: glibc random() after srandom(0x42) / srandom(0) */
static const uint32_t seed42_table[] = {
    286129175, 1594929109, 971802288, 222134722, 1335014133,
};
static const uint32_t seed0_table[] = {
    1804289383, 846930886, 1681692777, 1714636915, 1957747793,
};

typedef struct MyRng {
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *dev;
    QPCIBar bar;
    uint64_t bar_size;
} MyRng;

static void find_dev(QPCIDevice *dev, int devfn, void *data)
{
    QPCIDevice **found = data;

    g_assert_null(*found);
    *found = dev;
}

static void my_rng_map(MyRng *t)
{
    t->bus = qpci_new_pc(t->qts, NULL);
    t->dev = NULL;
    qpci_device_foreach(t->bus, MY_RNG_VENDOR_ID, MY_RNG_DEVICE_ID,
                        find_dev, &t->dev);
    g_assert_nonnull(t->dev);
    qpci_device_enable(t->dev);
    t->bar = qpci_iomap(t->dev, 0, &t->bar_size);
}

static void my_rng_unmap(MyRng *t)
{
    g_free(t->dev);
    qpci_free_pc(t->bus);
    t->dev = NULL;
    t->bus = NULL;
}

static void my_rng_start(MyRng *t, const char *extra_args)
{
    t->qts = qtest_initf("-nodefaults -device my_rng %s",
                         extra_args ? extra_args : "");
    my_rng_map(t);
}

static void my_rng_stop(MyRng *t)
{
    my_rng_unmap(t);
    qtest_quit(t->qts);
}

static uint32_t rd32(MyRng *t, uint64_t off)
{
    return qpci_io_readl(t->dev, t->bar, off);
}

static void wr32(MyRng *t, uint64_t off, uint32_t val)
{
    qpci_io_writel(t->dev, t->bar, off, val);
}

static uint64_t rd64(MyRng *t)
{
    return qpci_io_readq(t->dev, t->bar, MY_RNG_REG_RNG64);
}

static void set_algo_seed(MyRng *t, uint32_t algo, uint32_t seed)
{
    wr32(t, MY_RNG_REG_ALGO, algo);
    wr32(t, MY_RNG_REG_SEED, seed);
}

static void check_table(MyRng *t, const uint32_t *table, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        g_assert_cmpuint(rd32(t, MY_RNG_REG_RNG), ==, table[i]);
    }
}

static uint64_t read_bits(MyRng *t, uint32_t bits)
{
    return bits == 32 ? rd32(t, MY_RNG_REG_RNG) : rd64(t);
}

/*
 * Reads all MY_RNG_VEC_COUNT values of vector v (the caller has seeded
 * the device): the verbatim prefix value by value, then every value
 * through the SHA-256 of their little-endian bytes.
 */
static void check_vector(MyRng *t, const MyRngVector *v)
{
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    const char *got;
    uint32_t i;

    for (i = 0; i < MY_RNG_VEC_COUNT; i++) {
        uint64_t val = read_bits(t, v->bits);
        uint64_t le = cpu_to_le64(val);

        if (i < MY_RNG_VEC_PREFIX && val != v->prefix[i]) {
            g_test_message("algo %u seed 0x%08x %u-bit: value %u is %"
                           PRIu64 ", expected %" PRIu64, v->algo, v->seed,
                           v->bits, i, val, v->prefix[i]);
            g_assert_cmphex(val, ==, v->prefix[i]);
        }
        /* the low bits / 8 bytes: the value's own width */
        g_checksum_update(sum, (const guchar *)&le, v->bits / 8);
    }
    got = g_checksum_get_string(sum);
    if (strcmp(got, v->sha256)) {
        g_test_message("algo %u seed 0x%08x %u-bit: values 0-%u match, but "
                       "values %u-%u differ (SHA-256 %s, expected %s)",
                       v->algo, v->seed, v->bits, MY_RNG_VEC_PREFIX - 1,
                       MY_RNG_VEC_PREFIX, MY_RNG_VEC_COUNT - 1, got,
                       v->sha256);
    }
    g_assert_cmpstr(got, ==, v->sha256);
}

static const MyRngVector *vec_find(uint32_t algo, uint32_t seed,
                                   uint32_t bits)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(my_rng_vectors); i++) {
        const MyRngVector *v = &my_rng_vectors[i];

        if (v->algo == algo && v->seed == seed && v->bits == bits) {
            return v;
        }
    }
    g_assert_not_reached();
}

static void test_pci_config(void)
{
    MyRng t;
    uint32_t bar0;

    my_rng_start(&t, NULL);
    g_assert_cmphex(qpci_config_readw(t.dev, PCI_VENDOR_ID), ==,
                    MY_RNG_VENDOR_ID);
    g_assert_cmphex(qpci_config_readw(t.dev, PCI_DEVICE_ID), ==,
                    MY_RNG_DEVICE_ID);
    g_assert_cmphex(qpci_config_readb(t.dev, PCI_REVISION_ID), ==,
                    MY_RNG_REVISION);
    g_assert_cmphex(qpci_config_readw(t.dev, PCI_CLASS_DEVICE), ==,
                    MY_RNG_CLASS);
    g_assert_cmphex(qpci_config_readb(t.dev, PCI_CLASS_PROG), ==, 0);
    g_assert_cmphex(t.bar_size, ==, MY_RNG_BAR_SIZE);

    /* 32-bit, non-prefetchable memory BAR; nothing behind BAR1 */
    bar0 = qpci_config_readl(t.dev, PCI_BASE_ADDRESS_0);
    g_assert_cmphex(bar0 & ~PCI_BASE_ADDRESS_MEM_MASK, ==,
                    PCI_BASE_ADDRESS_SPACE_MEMORY |
                    PCI_BASE_ADDRESS_MEM_TYPE_32);
    g_assert_cmphex(qpci_config_readl(t.dev, PCI_BASE_ADDRESS_1), ==, 0);

    /* ABI 2.1: INTA# and an MSI capability */
    g_assert_cmphex(qpci_config_readb(t.dev, PCI_INTERRUPT_PIN), ==, 1);
    g_assert_true(qpci_config_readw(t.dev, PCI_STATUS) & PCI_STATUS_CAP_LIST);
    g_assert_cmpuint(qpci_find_capability(t.dev, PCI_CAP_ID_MSI, 0), !=, 0);
    my_rng_stop(&t);
}

static void test_info_registers(void)
{
    MyRng t;

    my_rng_start(&t, NULL);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_ID), ==, MY_RNG_ID_VALUE);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_FEATURES), ==, MY_RNG_FEATURES_VALUE);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_ALGOS), ==, MY_RNG_ALGOS_VALUE);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_ALGO), ==, MY_RNG_ALGO_GLIBC);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_DMA_MAX_SEGS), ==,
                    MY_RNG_DMA_MAX_SEGS);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_DMA_MAX_BYTES), ==,
                    MY_RNG_DMA_MAX_BYTES);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_DMA_STATUS), ==, 0);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_DMA_BYTES), ==, 0);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_IRQ_STATUS), ==, 0);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_IRQ_ENABLE), ==, 0);

    /* the RW registers store what is written, IRQ_ENABLE only bit 0 */
    wr32(&t, MY_RNG_REG_DMA_ADDR_LO, 0x89abcdef);
    wr32(&t, MY_RNG_REG_DMA_ADDR_HI, 0x01234567);
    wr32(&t, MY_RNG_REG_DMA_COUNT, 0xffffffff);
    wr32(&t, MY_RNG_REG_IRQ_ENABLE, 0xfffffffe);
    wr32(&t, MY_RNG_REG_IRQ_STATUS, 0xffffffff);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_DMA_ADDR_LO), ==, 0x89abcdef);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_DMA_ADDR_HI), ==, 0x01234567);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_DMA_COUNT), ==, 0xffffffff);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_IRQ_ENABLE), ==, 0);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_IRQ_STATUS), ==, 0);
    wr32(&t, MY_RNG_REG_IRQ_ENABLE, 0xffffffff);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_IRQ_ENABLE), ==, 1);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_DMA_STATUS), ==, 0);
    my_rng_stop(&t);
}

/* The v1 contract: RNG/SEED only, glibc numbers, as in the exercise */
static void test_v1_tables(void)
{
    MyRng t;
    int round;

    my_rng_start(&t, NULL);
    /* reset state: glibc seeded with 0 */
    check_table(&t, seed0_table, ARRAY_SIZE(seed0_table));
    for (round = 0; round < 2; round++) {
        wr32(&t, MY_RNG_REG_SEED, 0x42);
        check_table(&t, seed42_table, ARRAY_SIZE(seed42_table));
    }
    for (round = 0; round < 2; round++) {
        wr32(&t, MY_RNG_REG_SEED, 0);
        check_table(&t, seed0_table, ARRAY_SIZE(seed0_table));
    }
    my_rng_stop(&t);
}

static void test_vectors(const void *data)
{
    uint32_t algo = GPOINTER_TO_UINT(data);
    bool seen32 = false, seen64 = false;
    unsigned checked = 0;
    MyRng t;
    size_t i;

    my_rng_start(&t, NULL);
    wr32(&t, MY_RNG_REG_ALGO, algo);
    for (i = 0; i < ARRAY_SIZE(my_rng_vectors); i++) {
        const MyRngVector *v = &my_rng_vectors[i];

        if (v->algo != algo) {
            continue;
        }
        wr32(&t, MY_RNG_REG_SEED, v->seed);
        check_vector(&t, v);
        seen32 |= v->bits == 32;
        seen64 |= v->bits == 64;
        checked++;
    }
    g_assert_true(seen32 && seen64);
    g_test_message("algorithm %u: %u vector blocks checked", algo, checked);
    my_rng_stop(&t);
}

/* Reseeding replays; RNG64 relates to RNG as the design says */
static void test_reseed_replay(void)
{
    static const uint32_t seeds[] = { 0, 0x42, 0x80000000, 0xffffffff };
    uint64_t first[64], w[4];
    MyRng t;
    uint32_t algo;
    size_t s, i;

    my_rng_start(&t, NULL);
    for (algo = MY_RNG_ALGO_GLIBC; algo <= MY_RNG_ALGO_CHACHA20; algo++) {
        for (s = 0; s < ARRAY_SIZE(seeds); s++) {
            set_algo_seed(&t, algo, seeds[s]);
            for (i = 0; i < ARRAY_SIZE(first); i++) {
                first[i] = i & 1 ? rd64(&t) : rd32(&t, MY_RNG_REG_RNG);
            }
            wr32(&t, MY_RNG_REG_SEED, seeds[s]);
            for (i = 0; i < ARRAY_SIZE(first); i++) {
                g_assert_cmphex(i & 1 ? rd64(&t) : rd32(&t, MY_RNG_REG_RNG), ==,
                                first[i]);
            }

            wr32(&t, MY_RNG_REG_SEED, seeds[s]);
            w[0] = rd32(&t, MY_RNG_REG_RNG);
            w[1] = rd32(&t, MY_RNG_REG_RNG);
            wr32(&t, MY_RNG_REG_SEED, seeds[s]);
            w[2] = rd64(&t);
            if (algo == MY_RNG_ALGO_XOSHIRO256PP) {
                /* 32-bit read is the high half of one 64-bit output */
                wr32(&t, MY_RNG_REG_SEED, seeds[s]);
                w[3] = rd64(&t);
                g_assert_cmphex(w[0], ==, w[2] >> 32);
                g_assert_cmphex(w[3], ==, w[2]);
            } else {
                /* 64-bit read is two 32-bit outputs, low word first */
                g_assert_cmphex(w[2], ==, w[0] | (w[1] << 32));
            }
            if (algo == MY_RNG_ALGO_GLIBC) {
                g_assert_cmphex(w[0] >> 31, ==, 0);
            }
        }
    }
    my_rng_stop(&t);
}

/* Writing ALGO selects and reseeds with the latched seed */
static void test_algo_select(void)
{
    uint32_t ref[3][8];
    MyRng t;
    uint32_t algo, v, bad;
    size_t i;

    my_rng_start(&t, NULL);
    for (algo = MY_RNG_ALGO_GLIBC; algo <= MY_RNG_ALGO_CHACHA20; algo++) {
        set_algo_seed(&t, algo, 0xdeadbeef);
        for (i = 0; i < ARRAY_SIZE(ref[0]); i++) {
            ref[algo][i] = rd32(&t, MY_RNG_REG_RNG);
        }
    }
    /* the three algorithms really differ */
    g_assert_cmphex(ref[0][0], !=, ref[1][0]);
    g_assert_cmphex(ref[1][0], !=, ref[2][0]);

    /* the seed is latched across algorithm switches, even via HOST */
    wr32(&t, MY_RNG_REG_ALGO, MY_RNG_ALGO_HOST);
    g_assert_cmpuint(rd32(&t, MY_RNG_REG_ALGO), ==, MY_RNG_ALGO_HOST);
    for (algo = MY_RNG_ALGO_GLIBC; algo <= MY_RNG_ALGO_CHACHA20; algo++) {
        rd32(&t, MY_RNG_REG_RNG);
        wr32(&t, MY_RNG_REG_ALGO, algo);
        g_assert_cmpuint(rd32(&t, MY_RNG_REG_ALGO), ==, algo);
        for (i = 0; i < ARRAY_SIZE(ref[0]); i++) {
            g_assert_cmphex(rd32(&t, MY_RNG_REG_RNG), ==, ref[algo][i]);
        }
        /* rewriting the same id reseeds too */
        wr32(&t, MY_RNG_REG_ALGO, algo);
        g_assert_cmphex(rd32(&t, MY_RNG_REG_RNG), ==, ref[algo][0]);
    }

    /* invalid ids are ignored: no switch, no reseed */
    wr32(&t, MY_RNG_REG_ALGO, MY_RNG_ALGO_GLIBC);
    wr32(&t, MY_RNG_REG_SEED, 0x42);
    check_table(&t, seed42_table, 2);
    for (bad = 4; bad != 0; bad <<= 1) {
        wr32(&t, MY_RNG_REG_ALGO, bad);
        wr32(&t, MY_RNG_REG_ALGO, bad | 1);
    }
    wr32(&t, MY_RNG_REG_ALGO, 0xffffffff);
    g_assert_cmpuint(rd32(&t, MY_RNG_REG_ALGO), ==, MY_RNG_ALGO_GLIBC);
    check_table(&t, seed42_table + 2, 3);

    /* and a SEED write reseeds the current algorithm only */
    wr32(&t, MY_RNG_REG_SEED, 0xdeadbeef);
    wr32(&t, MY_RNG_REG_ALGO, MY_RNG_ALGO_XOSHIRO256PP);
    v = rd32(&t, MY_RNG_REG_RNG);
    g_assert_cmphex(v, ==, ref[MY_RNG_ALGO_XOSHIRO256PP][0]);
    my_rng_stop(&t);
}

static bool all_equal(const uint64_t *v, size_t n)
{
    size_t i;

    for (i = 1; i < n; i++) {
        if (v[i] != v[0]) {
            return false;
        }
    }
    return true;
}

/* HOST algorithm and ENTROPY give numbers, without touching the seeded ones */
static void test_host_entropy(void)
{
    uint64_t v[32];
    MyRng t;
    size_t i;

    my_rng_start(&t, NULL);
    wr32(&t, MY_RNG_REG_SEED, 0x42);
    check_table(&t, seed42_table, 2);
    for (i = 0; i < ARRAY_SIZE(v); i++) {
        v[i] = rd32(&t, MY_RNG_REG_ENTROPY);
    }
    g_assert_false(all_equal(v, ARRAY_SIZE(v)));
    check_table(&t, seed42_table + 2, 3);

    wr32(&t, MY_RNG_REG_ALGO, MY_RNG_ALGO_HOST);
    for (i = 0; i < ARRAY_SIZE(v); i++) {
        v[i] = rd32(&t, MY_RNG_REG_RNG);
    }
    g_assert_false(all_equal(v, ARRAY_SIZE(v)));
    for (i = 0; i < ARRAY_SIZE(v); i++) {
        v[i] = rd64(&t);
    }
    g_assert_false(all_equal(v, ARRAY_SIZE(v)));
    /* some 64-bit value uses the upper half */
    for (i = 0; i < ARRAY_SIZE(v) && !(v[i] >> 32); i++) {
        continue;
    }
    g_assert_cmpuint(i, <, ARRAY_SIZE(v));

    /* SEED is latched under HOST: selecting glibc then reseeds with it */
    wr32(&t, MY_RNG_REG_SEED, 0);
    rd32(&t, MY_RNG_REG_ENTROPY);
    wr32(&t, MY_RNG_REG_ALGO, MY_RNG_ALGO_GLIBC);
    check_table(&t, seed0_table, ARRAY_SIZE(seed0_table));
    my_rng_stop(&t);
}

typedef struct RegAccess {
    uint32_t offset;
    unsigned size;
    bool readable;
    bool writable;
} RegAccess;

#define REG_ACCESS(name, off, sz, rd, wr) { off, sz, rd, wr },

static const RegAccess reg_map[] = {
    MY_RNG_REGS(REG_ACCESS)
};

static bool is_valid_access(uint32_t off, unsigned size, bool write)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(reg_map); i++) {
        if (reg_map[i].offset == off && reg_map[i].size == size) {
            return write ? reg_map[i].writable : reg_map[i].readable;
        }
    }
    return false;
}

static uint64_t read_sized(MyRng *t, uint32_t off, unsigned size)
{
    switch (size) {
    case 1:
        return qpci_io_readb(t->dev, t->bar, off);
    case 2:
        return qpci_io_readw(t->dev, t->bar, off);
    case 4:
        return qpci_io_readl(t->dev, t->bar, off);
    default:
        return qpci_io_readq(t->dev, t->bar, off);
    }
}

static void write_sized(MyRng *t, uint32_t off, unsigned size, uint64_t val)
{
    switch (size) {
    case 1:
        qpci_io_writeb(t->dev, t->bar, off, val);
        break;
    case 2:
        qpci_io_writew(t->dev, t->bar, off, val);
        break;
    case 4:
        qpci_io_writel(t->dev, t->bar, off, val);
        break;
    default:
        qpci_io_writeq(t->dev, t->bar, off, val);
        break;
    }
}

static size_t count_substr(const char *s, const char *needle)
{
    size_t n = 0;

    while ((s = strstr(s, needle))) {
        n++;
        s += strlen(needle);
    }
    return n;
}

/*
 * Every access that is not a register's own (offset, size, direction) is
 * a guest error: logged once, read as 0, without effect.
 */
static void test_bad_access_sweep(void)
{
    static const uint64_t patterns[] = {
        0, 1, 2, 3, 4, 0x42, 0xff, 0xffff, 0x80000000, 0xffffffff,
        0xdeadbeefcafef00dULL, UINT64_MAX,
    };
    static const unsigned sizes[] = { 1, 2, 4, 8 };
    g_autofree char *dir = g_dir_make_tmp("my-rng-test-XXXXXX", NULL);
    g_autofree char *log = g_build_filename(dir, "guest-errors.log", NULL);
    g_autofree char *args = g_strdup_printf("-d guest_errors -D %s", log);
    g_autofree char *contents = NULL;
    size_t bad = 0, p = 0, logged;
    uint32_t off;
    MyRng t;
    size_t s;

    g_assert_nonnull(dir);
    my_rng_start(&t, args);
    wr32(&t, MY_RNG_REG_SEED, 0x42);
    check_table(&t, seed42_table, 2);

    for (off = 0; off < MY_RNG_BAR_SIZE; off++) {
        for (s = 0; s < ARRAY_SIZE(sizes); s++) {
            if (off + sizes[s] > MY_RNG_BAR_SIZE) {
                continue;
            }
            if (!is_valid_access(off, sizes[s], false)) {
                g_assert_cmphex(read_sized(&t, off, sizes[s]), ==, 0);
                bad++;
            }
            if (!is_valid_access(off, sizes[s], true)) {
                write_sized(&t, off, sizes[s],
                            patterns[p++ % ARRAY_SIZE(patterns)]);
                bad++;
            }
        }
    }
    /* valid ALGO writes of invalid ids are guest errors as well */
    for (p = 0; p < ARRAY_SIZE(patterns); p++) {
        if (patterns[p] > MY_RNG_ALGO_HOST) {
            wr32(&t, MY_RNG_REG_ALGO, patterns[p]);
            bad++;
        }
    }

    /* nothing consumed, nothing reseeded, nothing switched */
    g_assert_cmpuint(rd32(&t, MY_RNG_REG_ALGO), ==, MY_RNG_ALGO_GLIBC);
    check_table(&t, seed42_table + 2, 3);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_ID), ==, MY_RNG_ID_VALUE);
    wr32(&t, MY_RNG_REG_SEED, 0x42);
    check_table(&t, seed42_table, ARRAY_SIZE(seed42_table));
    my_rng_stop(&t);

    /* one log line per bad access (QEMU has exited: the log is flushed) */
    g_assert_true(g_file_get_contents(log, &contents, NULL, NULL));
    logged = count_substr(contents, "my_rng: ");
    g_test_message("%zu bad accesses, %zu logged", bad, logged);
    g_assert_cmpuint(logged, ==, bad);
    g_unlink(log);
    g_rmdir(dir);
}

static void test_reset(void)
{
    QDict *rsp;
    MyRng t;

    my_rng_start(&t, NULL);
    set_algo_seed(&t, MY_RNG_ALGO_CHACHA20, 0x42);
    rd32(&t, MY_RNG_REG_RNG);
    rsp = qtest_qmp(t.qts, "{ 'execute': 'system_reset' }");
    g_assert_false(qdict_haskey(rsp, "error"));
    qobject_unref(rsp);
    qtest_qmp_eventwait(t.qts, "RESET");

    /* the reset also cleared the BAR: map it again */
    my_rng_unmap(&t);
    my_rng_map(&t);
    g_assert_cmpuint(rd32(&t, MY_RNG_REG_ALGO), ==, MY_RNG_ALGO_GLIBC);
    check_table(&t, seed0_table, ARRAY_SIZE(seed0_table));
    /* the latch is 0 again: reselecting reseeds with 0 */
    wr32(&t, MY_RNG_REG_ALGO, MY_RNG_ALGO_GLIBC);
    check_table(&t, seed0_table, ARRAY_SIZE(seed0_table));
    my_rng_stop(&t);
}

static const char *qdict_status(QDict *rsp)
{
    QDict *ret = qdict_get_qdict(rsp, "return");

    g_assert_nonnull(ret);
    return qdict_get_try_str(ret, "status");
}

/* Polls a QMP query until its "status" is want; fails on "failed" */
static void wait_status(QTestState *qts, const char *query, const char *want)
{
    int i;

    for (i = 0; i < 1200; i++) {
        QDict *rsp = qtest_qmp(qts, "{ 'execute': %s }", query);
        const char *st = qdict_status(rsp);
        bool done = st && !strcmp(st, want);

        g_assert_false(st && !strcmp(st, "failed"));
        qobject_unref(rsp);
        if (done) {
            return;
        }
        g_usleep(50 * 1000);
    }
    g_assert_not_reached();
}

/* Saves src's state to file (src keeps running, paused, until stopped) */
static void migrate_to_file(MyRng *src, const char *file)
{
    g_autofree char *out = g_strdup_printf("exec:cat > %s", file);
    QDict *rsp;

    rsp = qtest_qmp(src->qts, "{ 'execute': 'migrate',"
                    " 'arguments': { 'uri': %s } }", out);
    g_assert_false(qdict_haskey(rsp, "error"));
    qobject_unref(rsp);
    wait_status(src->qts, "query-migrate", "completed");
}

/* Starts a QEMU that loads file; returns before the load has finished */
static QTestState *incoming_from_file(const char *file)
{
    g_autofree char *in = g_strdup_printf("exec:cat %s", file);
    QTestState *qts = qtest_init("-nodefaults -device my_rng -incoming defer");
    QDict *rsp;

    rsp = qtest_qmp(qts, "{ 'execute': 'migrate-incoming',"
                    " 'arguments': { 'uri': %s } }", in);
    g_assert_false(qdict_haskey(rsp, "error"));
    qobject_unref(rsp);
    return qts;
}

/*
 * Migrates source to a new QEMU through a file; returns the destination,
 * already running, with its BAR mapped.
 */
static void migrate(MyRng *src, MyRng *dst, const char *dir)
{
    g_autofree char *file = g_build_filename(dir, "migration", NULL);

    migrate_to_file(src, file);
    my_rng_stop(src);
    dst->qts = incoming_from_file(file);
    wait_status(dst->qts, "query-status", "running");
    g_unlink(file);
    /* PCI config came with the stream; remap only to get a QPCIBar */
    my_rng_map(dst);
}

/*
 * The generator state survives migration, for each deterministic
 * algorithm: 21 outputs leave ChaCha20 inside a block and glibc at an odd
 * position.  The continuation is checked against the vectors and against
 * a fresh run on the destination.
 */
static void test_migration(const void *data)
{
    uint32_t algo = GPOINTER_TO_UINT(data);
    const uint32_t seed = 0x42;
    enum { BEFORE = 21, AFTER = 40, N64 = 8 };
    g_autofree char *dir = g_dir_make_tmp("my-rng-test-XXXXXX", NULL);
    const MyRngVector *v = vec_find(algo, seed, 32);
    uint64_t src_v[BEFORE], got[AFTER], got64[N64];
    uint64_t ref[BEFORE + AFTER], ref64[N64];
    MyRng src, dst;
    size_t i;

    G_STATIC_ASSERT(BEFORE + AFTER <= MY_RNG_VEC_PREFIX);
    g_assert_nonnull(dir);
    my_rng_start(&src, NULL);
    set_algo_seed(&src, algo, seed);
    for (i = 0; i < BEFORE; i++) {
        src_v[i] = rd32(&src, MY_RNG_REG_RNG);
    }
    migrate(&src, &dst, dir);

    g_assert_cmpuint(rd32(&dst, MY_RNG_REG_ALGO), ==, algo);
    for (i = 0; i < AFTER; i++) {
        got[i] = rd32(&dst, MY_RNG_REG_RNG);
    }
    for (i = 0; i < N64; i++) {
        got64[i] = rd64(&dst);
    }

    /* the latched seed came along: reselecting replays the same run */
    wr32(&dst, MY_RNG_REG_ALGO, algo);
    for (i = 0; i < BEFORE + AFTER; i++) {
        ref[i] = rd32(&dst, MY_RNG_REG_RNG);
    }
    for (i = 0; i < N64; i++) {
        ref64[i] = rd64(&dst);
    }
    my_rng_stop(&dst);
    g_rmdir(dir);

    g_assert_cmpmem(src_v, sizeof(src_v), ref, sizeof(src_v));
    g_assert_cmpmem(got, sizeof(got), ref + BEFORE, sizeof(got));
    g_assert_cmpmem(got64, sizeof(got64), ref64, sizeof(ref64));
    if (algo == MY_RNG_ALGO_GLIBC) {
        for (i = 0; i < ARRAY_SIZE(seed42_table); i++) {
            g_assert_cmpuint(ref[i], ==, seed42_table[i]);
        }
    }
    g_assert_cmpmem(ref, sizeof(ref), v->prefix, sizeof(ref));
}

/* Creates a small qcow2 image with $QTEST_QEMU_IMG; false if there is none */
static bool make_qcow2(const char *file)
{
    const char *img = g_getenv("QTEST_QEMU_IMG");
    g_autoptr(GError) err = NULL;
    int status;

    if (!img) {
        return false;
    }
    {
        const char *argv[] = { img, "create", "-q", "-f", "qcow2", file,
                               "1M", NULL };

        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
                                   G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL,
                                   &status, &err));
    }
    g_assert_true(g_spawn_check_exit_status(status, &err));
    return true;
}

static void hmp_ok(QTestState *qts, const char *cmd)
{
    g_autofree char *out = qtest_hmp(qts, "%s", cmd);

    /* these commands print nothing on success */
    g_assert_cmpstr(out, ==, "");
}

/*
 * savevm/loadvm within one QEMU: after loadvm the selected algorithm
 * continues exactly where it was when the snapshot was taken, although the
 * guest reselected and reseeded in between.  Snapshots are taken
 * mid-stream (ChaCha20 inside a block, glibc at an odd position).
 */
static void test_savevm_loadvm(void)
{
    enum { BEFORE = 13, AFTER = 24 };
    g_autofree char *dir = g_dir_make_tmp("my-rng-test-XXXXXX", NULL);
    g_autofree char *disk = g_build_filename(dir, "disk.qcow2", NULL);
    g_autofree char *args = NULL;
    uint64_t after[AFTER], again[AFTER];
    uint32_t algo, i;
    MyRng t;

    g_assert_nonnull(dir);
    if (!make_qcow2(disk)) {
        g_test_skip("QTEST_QEMU_IMG is not set: no image for savevm");
        g_rmdir(dir);
        return;
    }
    args = g_strdup_printf("-drive if=none,id=d0,format=qcow2,file=%s", disk);
    my_rng_start(&t, args);

    for (algo = MY_RNG_ALGO_GLIBC; algo <= MY_RNG_ALGO_CHACHA20; algo++) {
        g_autofree char *save = g_strdup_printf("savevm snap%u", algo);
        g_autofree char *load = g_strdup_printf("loadvm snap%u", algo);

        set_algo_seed(&t, algo, 0xdeadbeef);
        for (i = 0; i < BEFORE; i++) {
            rd32(&t, MY_RNG_REG_RNG);
        }
        hmp_ok(t.qts, save);
        for (i = 0; i < AFTER; i++) {
            after[i] = i % 3 == 2 ? rd64(&t) : rd32(&t, MY_RNG_REG_RNG);
        }

        /* move everything away from the snapshot */
        set_algo_seed(&t, MY_RNG_ALGO_GLIBC, 0x42);
        check_table(&t, seed42_table, ARRAY_SIZE(seed42_table));

        hmp_ok(t.qts, load);
        g_assert_cmpuint(rd32(&t, MY_RNG_REG_ALGO), ==, algo);
        for (i = 0; i < AFTER; i++) {
            again[i] = i % 3 == 2 ? rd64(&t) : rd32(&t, MY_RNG_REG_RNG);
        }
        g_assert_cmpmem(again, sizeof(again), after, sizeof(after));
    }
    my_rng_stop(&t);
    g_unlink(disk);
    g_rmdir(dir);
}

/*
 * DMA engine (ABI 2.1).  No guest code runs, so the tests use fixed guest
 * RAM addresses of the pc machine's default 128 MiB; everything around
 * the segments is filled with PATTERN first and must keep it.
 */
#define RAM_END                 (128 * 1024 * 1024)
#define MSI_ADDR                0x00700000
#define LIST_ADDR               0x00800000
#define BUF_ADDR                0x01000000
#define BUF2_ADDR               0x02000000
#define UNMAPPED_ADDR           0x20000000  /* above RAM, below the PCI hole */
#define ROM_ADDR                0xfffff000  /* the BIOS */
#define GUARD                   64
#define PATTERN                 0xc3
#define MIB                     0x100000
#define VEC_BYTES               (MY_RNG_VEC_COUNT * 8)

typedef struct Seg {
    uint64_t addr;
    uint32_t len;
    uint32_t flags;
} Seg;

static uint32_t st_state(uint32_t st)
{
    return st & MY_RNG_DMA_STATE_MASK;
}

static uint32_t st_error(uint32_t st)
{
    return (st & MY_RNG_DMA_STATUS_ERROR_MASK) >> MY_RNG_DMA_STATUS_ERROR_SHIFT;
}

static uint32_t st_segs(uint32_t st)
{
    return st >> MY_RNG_DMA_STATUS_SEGS_SHIFT;
}

static uint32_t dma_status(MyRng *t)
{
    return rd32(t, MY_RNG_REG_DMA_STATUS);
}

static void put_list(MyRng *t, uint64_t at, const Seg *segs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        uint8_t e[MY_RNG_DMA_SEG_SIZE];

        stq_le_p(e + MY_RNG_DMA_SEG_ADDR, segs[i].addr);
        stl_le_p(e + MY_RNG_DMA_SEG_LEN, segs[i].len);
        stl_le_p(e + MY_RNG_DMA_SEG_FLAGS, segs[i].flags);
        qtest_memwrite(t->qts, at + i * sizeof(e), e, sizeof(e));
    }
}

static void dma_regs(MyRng *t, uint64_t list, uint32_t count)
{
    wr32(t, MY_RNG_REG_DMA_ADDR_LO, list);
    wr32(t, MY_RNG_REG_DMA_ADDR_HI, list >> 32);
    wr32(t, MY_RNG_REG_DMA_COUNT, count);
}

/* Writes the list to LIST_ADDR and issues cmd; returns at once */
static void dma_start(MyRng *t, const Seg *segs, size_t n, uint32_t cmd)
{
    put_list(t, LIST_ADDR, segs, n);
    dma_regs(t, LIST_ADDR, n);
    wr32(t, MY_RNG_REG_DMA_CMD, cmd);
}

/* Runs the virtual clock until the command ends; returns DMA_STATUS */
static uint32_t dma_wait(MyRng *t)
{
    int i;

    for (i = 0; i < 1000; i++) {
        uint32_t st = dma_status(t);

        if (st_state(st) != MY_RNG_DMA_STATE_BUSY) {
            return st;
        }
        qtest_clock_step(t->qts, MY_RNG_DMA_TICK_NS);
    }
    g_assert_not_reached();
}

static uint32_t dma_run(MyRng *t, const Seg *segs, size_t n, uint32_t cmd)
{
    dma_start(t, segs, n, cmd);
    return dma_wait(t);
}

/* One chunk: exactly MY_RNG_DMA_CHUNK more bytes of a long command */
static void dma_tick(MyRng *t)
{
    qtest_clock_step(t->qts, MY_RNG_DMA_TICK_NS);
}

static void fill_pattern(MyRng *t, uint64_t addr, size_t len)
{
    qtest_memset(t->qts, addr, PATTERN, len);
}

static void assert_pattern(MyRng *t, uint64_t addr, size_t len)
{
    g_autofree uint8_t *b = g_malloc(len);
    size_t i;

    qtest_bufread(t->qts, addr, b, len);
    for (i = 0; i < len; i++) {
        if (b[i] != PATTERN) {
            g_test_message("byte at 0x%" PRIx64 " was written", addr + i);
            g_assert_cmphex(b[i], ==, PATTERN);
        }
    }
}

/* Fills the guard area around each segment (and the segment) */
static void guard_segs(MyRng *t, const Seg *segs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        fill_pattern(t, segs[i].addr - GUARD, segs[i].len + 2 * GUARD);
    }
}

/*
 * Checks the guard bytes around each segment and returns the bytes of the
 * first `bytes` of the stream, collected from the segments in list order;
 * the rest of the segments must be untouched.
 */
static uint8_t *collect(MyRng *t, const Seg *segs, size_t n, size_t bytes)
{
    uint8_t *out = g_malloc(bytes ? bytes : 1);
    size_t i, pos = 0;

    for (i = 0; i < n; i++) {
        size_t k = MIN(segs[i].len, bytes - pos);

        assert_pattern(t, segs[i].addr - GUARD, GUARD);
        assert_pattern(t, segs[i].addr + segs[i].len, GUARD);
        qtest_bufread(t->qts, segs[i].addr, out + pos, k);
        if (k < segs[i].len) {
            assert_pattern(t, segs[i].addr + k, segs[i].len - k);
        }
        pos += k;
    }
    g_assert_cmpuint(pos, ==, bytes);
    return out;
}

static char *sha256_hex(const uint8_t *b, size_t len)
{
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, b, len);
}

/* Expected stream bytes: the little-endian bytes of v[0], v[1], ... */
static void le_bytes(const uint64_t *v, size_t n, uint8_t *out)
{
    size_t i;

    for (i = 0; i < n; i++) {
        stq_le_p(out + 8 * i, v[i]);
    }
}

static void assert_done(MyRng *t, uint32_t st, uint32_t segs, uint32_t bytes)
{
    g_assert_cmphex(st_state(st), ==, MY_RNG_DMA_STATE_DONE);
    g_assert_cmpuint(st_error(st), ==, 0);
    g_assert_cmpuint(st_segs(st), ==, segs);
    g_assert_cmpuint(rd32(t, MY_RNG_REG_DMA_BYTES), ==, bytes);
    g_assert_cmphex(rd32(t, MY_RNG_REG_IRQ_STATUS), ==, MY_RNG_IRQ_DMA_DONE);
    wr32(t, MY_RNG_REG_IRQ_STATUS, MY_RNG_IRQ_DMA_DONE);
}

static void assert_error(MyRng *t, uint32_t st, uint32_t err, uint32_t segs,
                         uint32_t bytes)
{
    g_assert_cmphex(st_state(st), ==, MY_RNG_DMA_STATE_ERROR);
    g_assert_cmpuint(st_error(st), ==, err);
    g_assert_cmpuint(st_segs(st), ==, segs);
    g_assert_cmpuint(rd32(t, MY_RNG_REG_DMA_BYTES), ==, bytes);
    g_assert_cmphex(rd32(t, MY_RNG_REG_IRQ_STATUS), ==, MY_RNG_IRQ_DMA_DONE);
    wr32(t, MY_RNG_REG_IRQ_STATUS, MY_RNG_IRQ_DMA_DONE);
}

static uint64_t bar0_addr(MyRng *t)
{
    return qpci_config_readl(t->dev, PCI_BASE_ADDRESS_0) &
           PCI_BASE_ADDRESS_MEM_MASK;
}

static void start_dma_test(MyRng *t)
{
    my_rng_start(t, "-m 128M");
}

/* The first len bytes of the stream in segs are want's */
static void assert_stream(MyRng *t, const Seg *segs, size_t n,
                          const uint8_t *want, size_t len)
{
    g_autofree uint8_t *got = collect(t, segs, n, len);

    g_assert_cmpmem(got, len, want, len);
}

/* An 8000-byte FILL in segs is the 64-bit block */
static void dma_fill_block(MyRng *t, const MyRngVector *v64, const Seg *segs,
                           size_t n)
{
    uint8_t want[8 * MY_RNG_VEC_PREFIX];
    g_autofree uint8_t *got = NULL;
    g_autofree char *hex = NULL;

    le_bytes(v64->prefix, MY_RNG_VEC_PREFIX, want);
    wr32(t, MY_RNG_REG_SEED, v64->seed);
    guard_segs(t, segs, n);
    assert_done(t, dma_run(t, segs, n, MY_RNG_DMA_CMD_FILL), n, VEC_BYTES);
    got = collect(t, segs, n, VEC_BYTES);
    g_assert_cmpmem(got, sizeof(want), want, sizeof(want));
    hex = sha256_hex(got, VEC_BYTES);
    g_assert_cmpstr(hex, ==, v64->sha256);
}

/*
 * RNG64, FILL 13, FILL 3, RNG64, FILL 5+11 (one command), RNG64: outputs
 * 0, 1-2, 3, 4, 5-6, 7; the unused bytes do not outlive their command.
 */
static void dma_advance64(MyRng *t, const MyRngVector *v64)
{
    const Seg f13[] = { { BUF_ADDR, 13 } };
    const Seg f3[] = { { BUF_ADDR + 0x100, 3 } };
    const Seg f16[] = { { BUF_ADDR + 0x200, 5 }, { BUF_ADDR + 0x301, 11 } };
    uint8_t want[8 * MY_RNG_VEC_PREFIX];

    le_bytes(v64->prefix, MY_RNG_VEC_PREFIX, want);
    wr32(t, MY_RNG_REG_SEED, v64->seed);
    guard_segs(t, f13, 1);
    guard_segs(t, f3, 1);
    guard_segs(t, f16, 2);
    g_assert_cmphex(rd64(t), ==, v64->prefix[0]);
    assert_done(t, dma_run(t, f13, 1, MY_RNG_DMA_CMD_FILL), 1, 13);
    assert_done(t, dma_run(t, f3, 1, MY_RNG_DMA_CMD_FILL), 1, 3);
    g_assert_cmphex(rd64(t), ==, v64->prefix[4]);
    assert_done(t, dma_run(t, f16, 2, MY_RNG_DMA_CMD_FILL), 2, 16);
    g_assert_cmphex(rd64(t), ==, v64->prefix[7]);
    assert_stream(t, f13, 1, want + 8, 13);
    assert_stream(t, f3, 1, want + 24, 3);
    assert_stream(t, f16, 2, want + 40, 16);
}

/* RNG, FILL 8, RNG: a FILL takes whole RNG64 outputs after a 32-bit read */
static void dma_advance32(MyRng *t, uint32_t algo, const MyRngVector *v32,
                          const MyRngVector *v64)
{
    const Seg f8[] = { { BUF_ADDR + 0x400, 8 } };
    bool xoshiro = algo == MY_RNG_ALGO_XOSHIRO256PP;
    uint8_t w8[8];

    if (xoshiro) {
        /* RNG is the high half of a whole 64-bit output */
        stq_le_p(w8, v64->prefix[1]);
    } else {
        /* RNG64 = two 32-bit outputs, low first */
        stl_le_p(w8, v32->prefix[1]);
        stl_le_p(w8 + 4, v32->prefix[2]);
    }
    wr32(t, MY_RNG_REG_SEED, v32->seed);
    guard_segs(t, f8, 1);
    g_assert_cmphex(rd32(t, MY_RNG_REG_RNG), ==, v32->prefix[0]);
    assert_done(t, dma_run(t, f8, 1, MY_RNG_DMA_CMD_FILL), 1, 8);
    g_assert_cmphex(rd32(t, MY_RNG_REG_RNG), ==, v32->prefix[xoshiro ? 2 : 3]);
    assert_stream(t, f8, 1, w8, 8);
}

/*
 * FILL against the vectors: an 8000-byte FILL, in one segment and in odd
 * segments at odd addresses, is the 64-bit block (its SHA-256), and the
 * generator advances by one RNG64 output per started 8 bytes, keeping the
 * unused bytes only within one command, interleaved with RNG/RNG64 reads.
 */
static void test_dma_vectors(const void *data)
{
    uint32_t algo = GPOINTER_TO_UINT(data);
    const uint32_t seed = 0xdeadbeef;
    const MyRngVector *v64 = vec_find(algo, seed, 64);
    const Seg one[] = { { BUF_ADDR, VEC_BYTES } };
    const Seg odd[] = {
        { BUF_ADDR + 0x3, 1 }, { BUF_ADDR + 0x101, 7 },
        { BUF_ADDR + 0x205, 13 }, { BUF2_ADDR + 0x7, 500 },
        { BUF2_ADDR + 0x1001, 3000 }, { BUF2_ADDR + 0x2003, 4479 },
    };
    MyRng t;

    start_dma_test(&t);
    wr32(&t, MY_RNG_REG_ALGO, algo);
    dma_fill_block(&t, v64, one, ARRAY_SIZE(one));
    dma_fill_block(&t, v64, odd, ARRAY_SIZE(odd));
    dma_advance64(&t, v64);
    dma_advance32(&t, algo, vec_find(algo, seed, 32), v64);
    my_rng_stop(&t);
}

/* FILL_HOST and FILL under ALGO HOST: host bytes, the generator untouched */
static void test_dma_host(void)
{
    const MyRngVector *v = vec_find(MY_RNG_ALGO_GLIBC, 0x42, 64);
    const Seg seg[] = { { BUF_ADDR, 4096 } };
    g_autofree uint8_t *a = NULL, *b = NULL;
    size_t i, zero = 0;
    MyRng t;

    start_dma_test(&t);
    wr32(&t, MY_RNG_REG_SEED, 0x42);
    g_assert_cmphex(rd64(&t), ==, v->prefix[0]);
    guard_segs(&t, seg, 1);
    assert_done(&t, dma_run(&t, seg, 1, MY_RNG_DMA_CMD_FILL_HOST), 1, 4096);
    a = collect(&t, seg, 1, 4096);
    g_assert_cmphex(rd64(&t), ==, v->prefix[1]);

    wr32(&t, MY_RNG_REG_ALGO, MY_RNG_ALGO_HOST);
    guard_segs(&t, seg, 1);
    assert_done(&t, dma_run(&t, seg, 1, MY_RNG_DMA_CMD_FILL), 1, 4096);
    b = collect(&t, seg, 1, 4096);
    for (i = 0; i < 4096; i++) {
        zero += !a[i] + !b[i];
    }
    /* 8192 random bytes: about 32 zeros; all-zero or repeated is a bug */
    g_assert_cmpuint(zero, <, 200);
    g_assert_true(memcmp(a, b, 4096));
    g_assert_true(memcmp(a, a + 2048, 2048));
    wr32(&t, MY_RNG_REG_ALGO, MY_RNG_ALGO_GLIBC);
    check_table(&t, seed42_table, ARRAY_SIZE(seed42_table));
    my_rng_stop(&t);
}

typedef struct StartErr {
    uint32_t cmd;
    uint64_t list;
    uint32_t count;
    Seg segs[3];
    uint32_t err;
} StartErr;

#define TOP                     (UINT64_MAX - 15)  /* [TOP, 2^64): no wrap */
#define SEG_MAX                 MY_RNG_DMA_MAX_BYTES

/* Commands that fail at START; list 0 is the device's own BAR */
static const StartErr start_errs[] = {
    { 0x0, LIST_ADDR, 1, { { BUF_ADDR, 8 } }, MY_RNG_DMA_ERR_BAD_CMD },
    { 0x2, LIST_ADDR, 1, { { BUF_ADDR, 8 } }, MY_RNG_DMA_ERR_BAD_CMD },
    { 0x5, LIST_ADDR, 1, { { BUF_ADDR, 8 } }, MY_RNG_DMA_ERR_BAD_CMD },
    { 0x7, LIST_ADDR, 1, { { BUF_ADDR, 8 } }, MY_RNG_DMA_ERR_BAD_CMD },
    { 0x9, LIST_ADDR, 0, { { BUF_ADDR, 8 } }, MY_RNG_DMA_ERR_BAD_CMD },
    { UINT32_MAX, 0, 0, { { 0 } }, MY_RNG_DMA_ERR_BAD_CMD },
    { 0x1, LIST_ADDR, 0, { { BUF_ADDR, 8 } }, MY_RNG_DMA_ERR_BAD_COUNT },
    { 0x3, LIST_ADDR, MY_RNG_DMA_MAX_SEGS + 1, { { BUF_ADDR, 8 } },
      MY_RNG_DMA_ERR_BAD_COUNT },
    { 0x1, UINT64_MAX, UINT32_MAX, { { 0 } }, MY_RNG_DMA_ERR_BAD_COUNT },
    { 0x1, TOP, 2, { { 0 } }, MY_RNG_DMA_ERR_LIST_WRAP },
    { 0x1, UINT64_MAX - 16 * 511, 512, { { 0 } },
      MY_RNG_DMA_ERR_LIST_WRAP },
    { 0x1, TOP, 1, { { 0 } }, MY_RNG_DMA_ERR_LIST_FAULT },
    { 0x1, UNMAPPED_ADDR, 1, { { 0 } }, MY_RNG_DMA_ERR_LIST_FAULT },
    { 0x1, ROM_ADDR, 1, { { 0 } }, MY_RNG_DMA_ERR_LIST_FAULT },
    { 0x1, RAM_END - 16, 2, { { 0 } }, MY_RNG_DMA_ERR_LIST_FAULT },
    { 0x1, 0, 1, { { 0 } }, MY_RNG_DMA_ERR_LIST_FAULT },  /* own BAR */
    { 0x1, LIST_ADDR, 1, { { BUF_ADDR, 0 } },
      MY_RNG_DMA_ERR_BAD_SEGMENT },
    { 0x1, LIST_ADDR, 1, { { BUF_ADDR, SEG_MAX + 1 } },
      MY_RNG_DMA_ERR_BAD_SEGMENT },
    { 0x1, LIST_ADDR, 1, { { BUF_ADDR, 8, 1 } },
      MY_RNG_DMA_ERR_BAD_SEGMENT },
    { 0x1, LIST_ADDR, 2, { { BUF_ADDR, 8 }, { BUF2_ADDR, 8, 1u << 31 } },
      MY_RNG_DMA_ERR_BAD_SEGMENT },
    { 0x1, LIST_ADDR, 2, { { BUF_ADDR, 8 }, { UINT64_MAX - 7, 9 } },
      MY_RNG_DMA_ERR_BAD_SEGMENT },
    { 0x1, LIST_ADDR, 3, { { BUF_ADDR, SEG_MAX }, { BUF2_ADDR, 1 },
                           { BUF2_ADDR, 0 } },
      MY_RNG_DMA_ERR_BAD_SEGMENT },
    { 0x1, LIST_ADDR, 2, { { BUF_ADDR, SEG_MAX }, { BUF2_ADDR, 1 } },
      MY_RNG_DMA_ERR_TOO_LONG },
    { 0x3, LIST_ADDR, 3, { { BUF_ADDR, SEG_MAX / 2 },
                           { BUF2_ADDR, SEG_MAX / 2 },
                           { BUF2_ADDR + SEG_MAX, 1 } },
      MY_RNG_DMA_ERR_TOO_LONG },
};

#undef TOP
#undef SEG_MAX

/*
 * Errors found at START: nothing written, DMA_BYTES and SEGS_DONE 0, the
 * generator untouched, the end signalled in IRQ_STATUS.  Also the order of
 * the checks.
 */
static void test_dma_start_errors(void)
{
    const MyRngVector *v = vec_find(MY_RNG_ALGO_CHACHA20, 0x42, 64);
    uint64_t bar;
    uint32_t st;
    MyRng t;
    size_t i, j;

    G_STATIC_ASSERT(ARRAY_SIZE(start_errs) <= MY_RNG_VEC_PREFIX);
    start_dma_test(&t);
    bar = bar0_addr(&t);
    set_algo_seed(&t, MY_RNG_ALGO_CHACHA20, 0x42);
    fill_pattern(&t, BUF_ADDR - GUARD, MIB + 2 * GUARD);
    fill_pattern(&t, BUF2_ADDR - GUARD, MIB + 2 * GUARD);
    fill_pattern(&t, RAM_END - 16, 16);
    for (i = 0; i < ARRAY_SIZE(start_errs); i++) {
        const StartErr *c = &start_errs[i];
        uint64_t list = c->list ? c->list : bar;

        g_test_message("case %zu: cmd 0x%x list 0x%" PRIx64 " count %u",
                       i, c->cmd, list, c->count);
        if (list == LIST_ADDR) {
            put_list(&t, LIST_ADDR, c->segs, MIN(c->count, 3));
        }
        dma_regs(&t, list, c->count);
        wr32(&t, MY_RNG_REG_DMA_CMD, c->cmd);
        /* found at once, before anything is written: no chunk is due */
        st = dma_status(&t);
        assert_error(&t, st, c->err, 0, 0);
        for (j = 0; j < 3; j++) {
            dma_tick(&t);
        }
        g_assert_cmphex(dma_status(&t), ==, st);
        g_assert_cmphex(rd32(&t, MY_RNG_REG_IRQ_STATUS), ==, 0);
        g_assert_cmphex(rd64(&t), ==, v->prefix[i]);
    }
    assert_pattern(&t, BUF_ADDR - GUARD, MIB + 2 * GUARD);
    assert_pattern(&t, BUF2_ADDR - GUARD, MIB + 2 * GUARD);
    assert_pattern(&t, RAM_END - 16, 16);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_ID), ==, MY_RNG_ID_VALUE);
    my_rng_stop(&t);
}

/*
 * WRITE_FAULT: the segments before the bad one are complete, nothing is
 * written to the bad target (own registers, unmapped, ROM, a segment
 * crossing the end of RAM, the top of the address space) or anywhere
 * else, and the generator advanced by ceil(DMA_BYTES / 8) outputs.
 */
static void test_dma_write_fault(void)
{
    const MyRngVector *v = vec_find(MY_RNG_ALGO_XOSHIRO256PP, 0x42, 64);
    uint8_t want[8 * MY_RNG_VEC_PREFIX], rom[16], rom2[16];
    uint64_t bar;
    MyRng t;
    size_t i;

    le_bytes(v->prefix, MY_RNG_VEC_PREFIX, want);
    start_dma_test(&t);
    bar = bar0_addr(&t);
    qtest_memread(t.qts, ROM_ADDR, rom, sizeof(rom));
    {
        const uint64_t bad[] = {
            bar + MY_RNG_REG_SEED, bar + MY_RNG_REG_DMA_CMD - 4,
            UNMAPPED_ADDR, ROM_ADDR, RAM_END - 8, UINT64_MAX - 15,
        };

        for (i = 0; i < ARRAY_SIZE(bad); i++) {
            const Seg segs[] = {
                { BUF_ADDR + 1, 100 }, { BUF2_ADDR, 3 }, { bad[i], 16 },
                { BUF2_ADDR + 0x100, 8 },
            };
            g_autofree uint8_t *got = NULL;

            g_test_message("segment 2 at 0x%" PRIx64, bad[i]);
            set_algo_seed(&t, MY_RNG_ALGO_XOSHIRO256PP, 0x42);
            /* only the RAM segments: the bad one may be registers */
            guard_segs(&t, segs, 2);
            guard_segs(&t, segs + 3, 1);
            fill_pattern(&t, RAM_END - 8, 8);
            assert_error(&t, dma_run(&t, segs, ARRAY_SIZE(segs),
                                     MY_RNG_DMA_CMD_FILL),
                         MY_RNG_DMA_ERR_WRITE_FAULT, 2, 103);
            got = collect(&t, segs, 2, 103);
            g_assert_cmpmem(got, 103, want, 103);
            assert_pattern(&t, segs[3].addr - GUARD, segs[3].len + 2 * GUARD);
            assert_pattern(&t, RAM_END - 8, 8);
            /* ceil(103 / 8) = 13 outputs; the registers were not hit */
            g_assert_cmphex(rd64(&t), ==, v->prefix[13]);
            g_assert_cmphex(rd32(&t, MY_RNG_REG_DMA_STATUS) >> 16, ==, 2);
            g_assert_cmpuint(rd32(&t, MY_RNG_REG_ALGO), ==,
                             MY_RNG_ALGO_XOSHIRO256PP);
        }
    }
    qtest_memread(t.qts, ROM_ADDR, rom2, sizeof(rom2));
    g_assert_cmpmem(rom, sizeof(rom), rom2, sizeof(rom2));
    my_rng_stop(&t);
}

/* A command of 1 MiB at BUF_ADDR, with guards */
static const Seg big[] = { { BUF_ADDR, MIB } };

static void start_big(MyRng *t, uint32_t algo, uint32_t seed)
{
    set_algo_seed(t, algo, seed);
    guard_segs(t, big, 1);
    dma_start(t, big, 1, MY_RNG_DMA_CMD_FILL);
}

/*
 * After a command that ended early with `bytes` written at BUF_ADDR: the
 * rest is untouched, and a fresh run of bytes + 8 from the same seed gives
 * the same bytes followed by the RNG64 value the device returns now.
 */
static void check_early_end(MyRng *t, uint32_t seed, uint32_t bytes)
{
    const Seg ref[] = { { BUF2_ADDR, bytes + 8 } };
    g_autofree uint8_t *got = NULL, *want = NULL;
    uint64_t next = rd64(t);
    int i;

    for (i = 0; i < 5; i++) {
        dma_tick(t);
    }
    assert_pattern(t, BUF_ADDR + bytes, MIB - bytes + GUARD);
    assert_pattern(t, BUF_ADDR - GUARD, GUARD);
    got = g_malloc(bytes);
    qtest_bufread(t->qts, BUF_ADDR, got, bytes);
    wr32(t, MY_RNG_REG_SEED, seed);
    guard_segs(t, ref, 1);
    assert_done(t, dma_run(t, ref, 1, MY_RNG_DMA_CMD_FILL), 1, bytes + 8);
    want = collect(t, ref, 1, bytes + 8);
    g_assert_cmpmem(got, bytes, want, bytes);
    g_assert_cmphex(ldq_le_p(want + bytes), ==, next);
}

/* NO_MASTER at START (nothing happens) and when a chunk is due */
static void test_dma_no_master(void)
{
    uint16_t cmd;
    MyRng t;

    start_dma_test(&t);
    cmd = qpci_config_readw(t.dev, PCI_COMMAND);
    set_algo_seed(&t, MY_RNG_ALGO_GLIBC, 0x42);
    guard_segs(&t, big, 1);
    qpci_config_writew(t.dev, PCI_COMMAND, cmd & ~PCI_COMMAND_MASTER);
    put_list(&t, LIST_ADDR, big, 1);
    dma_regs(&t, LIST_ADDR, 1);
    wr32(&t, MY_RNG_REG_DMA_CMD, MY_RNG_DMA_CMD_FILL);
    assert_error(&t, dma_status(&t), MY_RNG_DMA_ERR_NO_MASTER, 0, 0);
    qpci_config_writew(t.dev, PCI_COMMAND, cmd);
    check_table(&t, seed42_table, 1);

    start_big(&t, MY_RNG_ALGO_GLIBC, 0x42);
    dma_tick(&t);
    g_assert_cmphex(st_state(dma_status(&t)), ==, MY_RNG_DMA_STATE_BUSY);
    g_assert_cmpuint(rd32(&t, MY_RNG_REG_DMA_BYTES), ==, MY_RNG_DMA_CHUNK);
    qpci_config_writew(t.dev, PCI_COMMAND, cmd & ~PCI_COMMAND_MASTER);
    dma_tick(&t);
    assert_error(&t, dma_status(&t), MY_RNG_DMA_ERR_NO_MASTER, 0,
                 MY_RNG_DMA_CHUNK);
    qpci_config_writew(t.dev, PCI_COMMAND, cmd);
    check_early_end(&t, 0x42, MY_RNG_DMA_CHUNK);
    my_rng_stop(&t);
}

/* ABORT stops a command between chunks; an idle ABORT does nothing */
static void test_dma_abort(void)
{
    MyRng t;

    start_dma_test(&t);
    wr32(&t, MY_RNG_REG_DMA_CMD, MY_RNG_DMA_CMD_ABORT);
    g_assert_cmphex(dma_status(&t), ==, MY_RNG_DMA_STATE_IDLE);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_IRQ_STATUS), ==, 0);

    start_big(&t, MY_RNG_ALGO_CHACHA20, 7);
    dma_tick(&t);
    dma_tick(&t);
    g_assert_cmphex(st_state(dma_status(&t)), ==, MY_RNG_DMA_STATE_BUSY);
    wr32(&t, MY_RNG_REG_DMA_CMD, MY_RNG_DMA_CMD_ABORT);
    assert_error(&t, dma_status(&t), MY_RNG_DMA_ERR_ABORTED, 0,
                 2 * MY_RNG_DMA_CHUNK);
    check_early_end(&t, 7, 2 * MY_RNG_DMA_CHUNK);

    /* idle again: ABORT changes nothing, raises nothing */
    wr32(&t, MY_RNG_REG_DMA_CMD, MY_RNG_DMA_CMD_ABORT);
    g_assert_cmphex(st_state(dma_status(&t)), ==, MY_RNG_DMA_STATE_DONE);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_IRQ_STATUS), ==, 0);
    my_rng_stop(&t);
}

/*
 * A command runs in the background: BUSY with progress per chunk; a
 * second START is REJECTED without effect on the running command, whose
 * list was latched at START; the next accepted START clears REJECTED.
 */
static void test_dma_busy(void)
{
    const Seg other[] = { { BUF2_ADDR, 16 } };
    g_autofree uint8_t *a = NULL, *b = NULL;
    uint32_t st, i;
    MyRng t;

    start_dma_test(&t);
    guard_segs(&t, other, 1);
    start_big(&t, MY_RNG_ALGO_XOSHIRO256PP, 1);
    g_assert_cmphex(dma_status(&t), ==, MY_RNG_DMA_STATE_BUSY);
    g_assert_cmpuint(rd32(&t, MY_RNG_REG_DMA_BYTES), ==, 0);
    /* the list and the registers may change: the command is latched */
    put_list(&t, LIST_ADDR, other, 1);
    dma_regs(&t, LIST_ADDR + 16, 2);
    wr32(&t, MY_RNG_REG_DMA_CMD, MY_RNG_DMA_CMD_FILL);
    wr32(&t, MY_RNG_REG_DMA_CMD, 0x42);
    st = dma_status(&t);
    g_assert_cmphex(st, ==, MY_RNG_DMA_STATE_BUSY | MY_RNG_DMA_STATUS_REJECTED);
    for (i = 1; i < MIB / MY_RNG_DMA_CHUNK; i++) {
        dma_tick(&t);
        g_assert_cmphex(dma_status(&t), ==, st);
        g_assert_cmpuint(rd32(&t, MY_RNG_REG_DMA_BYTES), ==,
                         i * MY_RNG_DMA_CHUNK);
        g_assert_cmphex(rd32(&t, MY_RNG_REG_IRQ_STATUS), ==, 0);
    }
    dma_tick(&t);
    st = dma_status(&t);
    g_assert_true(st & MY_RNG_DMA_STATUS_REJECTED);
    assert_done(&t, st & ~MY_RNG_DMA_STATUS_REJECTED, 1, MIB);
    assert_pattern(&t, BUF2_ADDR, 16);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_DMA_COUNT), ==, 2);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_DMA_ADDR_LO), ==, LIST_ADDR + 16);
    a = collect(&t, big, 1, MIB);

    /* the same run again, accepted: REJECTED is gone */
    start_big(&t, MY_RNG_ALGO_XOSHIRO256PP, 1);
    g_assert_cmphex(dma_status(&t), ==, MY_RNG_DMA_STATE_BUSY);
    assert_done(&t, dma_wait(&t), 1, MIB);
    b = collect(&t, big, 1, MIB);
    g_assert_cmpmem(a, MIB, b, MIB);
    my_rng_stop(&t);
}

/* Routes every PIIX3 PIRQ line to ISA IRQ 11 and watches the IOAPIC */
#define INTX_IRQ                11
#define PIIX_PIRQ_ROUTE         0x60

static void intx_setup(MyRng *t)
{
    QPCIDevice *piix = qpci_device_find(t->bus, QPCI_DEVFN(1, 0));
    int i;

    g_assert_nonnull(piix);
    for (i = 0; i < 4; i++) {
        qpci_config_writeb(piix, PIIX_PIRQ_ROUTE + i, INTX_IRQ);
    }
    g_free(piix);
    qtest_irq_intercept_in(t->qts, "ioapic");
}

static bool intx(MyRng *t)
{
    bool line = qtest_get_irq(t->qts, INTX_IRQ);
    bool status = qpci_config_readw(t->dev, PCI_STATUS) & PCI_STATUS_INTERRUPT;

    g_assert_cmpint(line, ==, status);
    return line;
}

static const Seg small[] = { { BUF_ADDR, 24 } };

/* INTA#: asserted while IRQ_STATUS & IRQ_ENABLE, for every kind of end */
static void test_dma_intx(void)
{
    MyRng t;

    start_dma_test(&t);
    intx_setup(&t);
    g_assert_cmphex(qpci_config_readb(t.dev, PCI_INTERRUPT_PIN), ==, 1);
    g_assert_false(intx(&t));

    /* disabled: IRQ_STATUS is set, the line stays low */
    dma_run(&t, small, 1, MY_RNG_DMA_CMD_FILL);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_IRQ_STATUS), ==, 1);
    g_assert_false(intx(&t));
    wr32(&t, MY_RNG_REG_IRQ_ENABLE, UINT32_MAX);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_IRQ_ENABLE), ==, 1);
    g_assert_true(intx(&t));
    wr32(&t, MY_RNG_REG_IRQ_ENABLE, 0);
    g_assert_false(intx(&t));
    wr32(&t, MY_RNG_REG_IRQ_ENABLE, 1);
    g_assert_true(intx(&t));
    /* RW1C: writing 0 keeps it, writing 1 clears it */
    wr32(&t, MY_RNG_REG_IRQ_STATUS, 0xfffffffe);
    g_assert_true(intx(&t));
    wr32(&t, MY_RNG_REG_IRQ_STATUS, 1);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_IRQ_STATUS), ==, 0);
    g_assert_false(intx(&t));

    /* raised at the end of a command, not before */
    dma_start(&t, big, 1, MY_RNG_DMA_CMD_FILL);
    dma_tick(&t);
    g_assert_false(intx(&t));
    dma_wait(&t);
    g_assert_true(intx(&t));
    wr32(&t, MY_RNG_REG_IRQ_STATUS, 1);
    g_assert_false(intx(&t));
    /* an error at START and ABORT end commands too */
    wr32(&t, MY_RNG_REG_DMA_CMD, 0x8);
    g_assert_true(intx(&t));
    wr32(&t, MY_RNG_REG_IRQ_STATUS, 1);
    dma_start(&t, big, 1, MY_RNG_DMA_CMD_FILL);
    g_assert_false(intx(&t));
    wr32(&t, MY_RNG_REG_DMA_CMD, MY_RNG_DMA_CMD_ABORT);
    g_assert_true(intx(&t));
    wr32(&t, MY_RNG_REG_IRQ_STATUS, 1);
    g_assert_false(intx(&t));
    my_rng_stop(&t);
}

/* MSI: one message per end while enabled; INTA# stays low */
static void test_dma_msi(void)
{
    const uint32_t data = 0x4321;
    uint8_t cap;
    uint16_t flags;
    MyRng t;

    start_dma_test(&t);
    intx_setup(&t);
    cap = qpci_find_capability(t.dev, PCI_CAP_ID_MSI, 0);
    g_assert_cmpuint(cap, !=, 0);
    flags = qpci_config_readw(t.dev, cap + PCI_MSI_FLAGS);
    g_assert_true(flags & PCI_MSI_FLAGS_64BIT);
    g_assert_cmphex(flags & (PCI_MSI_FLAGS_QMASK | PCI_MSI_FLAGS_MASKBIT |
                             PCI_MSI_FLAGS_ENABLE), ==, 0);
    qpci_config_writel(t.dev, cap + PCI_MSI_ADDRESS_LO, MSI_ADDR);
    qpci_config_writel(t.dev, cap + PCI_MSI_ADDRESS_HI, 0);
    qpci_config_writew(t.dev, cap + PCI_MSI_DATA_64, data);
    qpci_config_writew(t.dev, cap + PCI_MSI_FLAGS,
                       flags | PCI_MSI_FLAGS_ENABLE);
    wr32(&t, MY_RNG_REG_IRQ_ENABLE, 1);

    qtest_writel(t.qts, MSI_ADDR, 0);
    dma_start(&t, big, 1, MY_RNG_DMA_CMD_FILL);
    dma_tick(&t);
    g_assert_cmphex(qtest_readl(t.qts, MSI_ADDR), ==, 0);
    dma_wait(&t);
    g_assert_cmphex(qtest_readl(t.qts, MSI_ADDR), ==, data);
    g_assert_false(intx(&t));
    g_assert_cmphex(rd32(&t, MY_RNG_REG_IRQ_STATUS), ==, 1);

    /* one message per end, even with IRQ_STATUS still set */
    qtest_writel(t.qts, MSI_ADDR, 0);
    wr32(&t, MY_RNG_REG_DMA_CMD, 0x6);
    g_assert_cmphex(qtest_readl(t.qts, MSI_ADDR), ==, data);
    g_assert_false(intx(&t));

    /* IRQ_ENABLE off: no message */
    wr32(&t, MY_RNG_REG_IRQ_ENABLE, 0);
    qtest_writel(t.qts, MSI_ADDR, 0);
    dma_run(&t, small, 1, MY_RNG_DMA_CMD_FILL);
    g_assert_cmphex(qtest_readl(t.qts, MSI_ADDR), ==, 0);

    /* MSI off again: INTA# takes over the pending status */
    wr32(&t, MY_RNG_REG_IRQ_ENABLE, 1);
    g_assert_false(intx(&t));
    qpci_config_writew(t.dev, cap + PCI_MSI_FLAGS, flags);
    g_assert_true(intx(&t));
    g_assert_cmphex(qtest_readl(t.qts, MSI_ADDR), ==, 0);
    my_rng_stop(&t);
}

/* Reset drops a running command: no more writes, no interrupt */
static void test_dma_reset(void)
{
    QDict *rsp;
    MyRng t;
    int i;

    start_dma_test(&t);
    wr32(&t, MY_RNG_REG_IRQ_ENABLE, 1);
    start_big(&t, MY_RNG_ALGO_GLIBC, 3);
    dma_tick(&t);
    rsp = qtest_qmp(t.qts, "{ 'execute': 'system_reset' }");
    g_assert_false(qdict_haskey(rsp, "error"));
    qobject_unref(rsp);
    qtest_qmp_eventwait(t.qts, "RESET");
    my_rng_unmap(&t);
    my_rng_map(&t);
    for (i = 0; i < 20; i++) {
        dma_tick(&t);
    }
    assert_pattern(&t, BUF_ADDR + MY_RNG_DMA_CHUNK,
                   MIB - MY_RNG_DMA_CHUNK + GUARD);
    g_assert_cmphex(dma_status(&t), ==, MY_RNG_DMA_STATE_IDLE);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_DMA_BYTES), ==, 0);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_DMA_ADDR_LO), ==, 0);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_DMA_ADDR_HI), ==, 0);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_DMA_COUNT), ==, 0);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_IRQ_STATUS), ==, 0);
    g_assert_cmphex(rd32(&t, MY_RNG_REG_IRQ_ENABLE), ==, 0);
    g_assert_false(qpci_config_readw(t.dev, PCI_STATUS) &
                   PCI_STATUS_INTERRUPT);
    check_table(&t, seed0_table, ARRAY_SIZE(seed0_table));
    my_rng_stop(&t);
}

/*
 * Finishes the 1 MiB command at BUF_ADDR begun with (algo, seed) and
 * checks it against a fresh run: same bytes, same next RNG64 value, and
 * the first 8000 bytes are the vectors' 64-bit block.
 */
static void finish_big(MyRng *t, uint32_t algo, uint32_t seed)
{
    const MyRngVector *v = vec_find(algo, seed, 64);
    const Seg ref[] = { { BUF2_ADDR, MIB } };
    g_autofree uint8_t *got = NULL, *want = NULL;
    g_autofree char *hex = NULL;
    uint64_t next;

    assert_done(t, dma_wait(t), 1, MIB);
    next = rd64(t);
    got = collect(t, big, 1, MIB);
    hex = sha256_hex(got, VEC_BYTES);
    g_assert_cmpstr(hex, ==, v->sha256);
    set_algo_seed(t, algo, seed);
    guard_segs(t, ref, 1);
    assert_done(t, dma_run(t, ref, 1, MY_RNG_DMA_CMD_FILL), 1, MIB);
    want = collect(t, ref, 1, MIB);
    g_assert_cmpmem(got, MIB, want, MIB);
    g_assert_cmphex(rd64(t), ==, next);
}

/* A command in flight migrates and resumes at the same byte */
static void test_dma_migration(void)
{
    g_autofree char *dir = g_dir_make_tmp("my-rng-test-XXXXXX", NULL);
    MyRng src, dst;
    int i;

    g_assert_nonnull(dir);
    start_dma_test(&src);
    wr32(&src, MY_RNG_REG_IRQ_ENABLE, 1);
    start_big(&src, MY_RNG_ALGO_CHACHA20, 0x80000000);
    for (i = 0; i < 3; i++) {
        dma_tick(&src);
    }
    migrate(&src, &dst, dir);
    g_rmdir(dir);
    g_assert_cmphex(dma_status(&dst), ==, MY_RNG_DMA_STATE_BUSY);
    g_assert_cmpuint(rd32(&dst, MY_RNG_REG_DMA_BYTES), ==,
                     3 * MY_RNG_DMA_CHUNK);
    g_assert_cmphex(rd32(&dst, MY_RNG_REG_IRQ_ENABLE), ==, 1);
    assert_pattern(&dst, BUF_ADDR + 3 * MY_RNG_DMA_CHUNK, GUARD);
    finish_big(&dst, MY_RNG_ALGO_CHACHA20, 0x80000000);
    my_rng_stop(&dst);
}

/* savevm/loadvm with a command in flight: the rerun writes the same */
static void test_dma_savevm(void)
{
    g_autofree char *dir = g_dir_make_tmp("my-rng-test-XXXXXX", NULL);
    g_autofree char *disk = g_build_filename(dir, "disk.qcow2", NULL);
    g_autofree char *args = NULL;
    g_autofree uint8_t *a = NULL, *b = NULL;
    uint64_t next;
    MyRng t;

    g_assert_nonnull(dir);
    if (!make_qcow2(disk)) {
        g_test_skip("QTEST_QEMU_IMG is not set: no image for savevm");
        g_rmdir(dir);
        return;
    }
    args = g_strdup_printf("-m 128M -drive if=none,id=d0,format=qcow2,"
                           "file=%s", disk);
    my_rng_start(&t, args);
    start_big(&t, MY_RNG_ALGO_GLIBC, 0xffffffff);
    dma_tick(&t);
    dma_tick(&t);
    hmp_ok(t.qts, "savevm dma");
    assert_done(&t, dma_wait(&t), 1, MIB);
    next = rd64(&t);
    a = collect(&t, big, 1, MIB);

    fill_pattern(&t, BUF_ADDR, MIB);
    set_algo_seed(&t, MY_RNG_ALGO_XOSHIRO256PP, 5);
    hmp_ok(t.qts, "loadvm dma");
    g_assert_cmphex(dma_status(&t), ==, MY_RNG_DMA_STATE_BUSY);
    g_assert_cmpuint(rd32(&t, MY_RNG_REG_DMA_BYTES), ==,
                     2 * MY_RNG_DMA_CHUNK);
    assert_done(&t, dma_wait(&t), 1, MIB);
    g_assert_cmphex(rd64(&t), ==, next);
    b = collect(&t, big, 1, MIB);
    g_assert_cmpmem(a, MIB, b, MIB);
    my_rng_stop(&t);
    g_unlink(disk);
    g_rmdir(dir);
}

/*
 * A migration stream is untrusted input: post_load must refuse indices
 * and an algorithm that would index out of bounds, and a DMA state the
 * device cannot be in.  The device's fields are found in a real stream,
 * taken with a DMA command in flight, by the unique algo/seed pair set up
 * here, and patched one at a time; the destination must then fail the
 * load (exit 1) instead of running.  An unpatched copy with only the seed
 * latch and DMA_COUNT changed must load, which proves the offsets.
 */
enum {
    /* byte offsets in the stream, from the "algo" field (VMState order) */
    VMS_ALGO = 0,
    VMS_SEED = 4,
    VMS_GLIBC_F = 8 + 31 * 4,
    VMS_GLIBC_R = VMS_GLIBC_F + 4,
    VMS_CHACHA_POS = VMS_GLIBC_R + 4 + 4 * 8 + 8 * 4 + 8 + 16 * 4,
    /* version 2 */
    VMS_DMA_ADDR = VMS_CHACHA_POS + 4,
    VMS_DMA_COUNT = VMS_DMA_ADDR + 8,
    VMS_DMA_STATUS = VMS_DMA_COUNT + 4,
    VMS_DMA_BYTES = VMS_DMA_STATUS + 4,
    VMS_IRQ_STATUS = VMS_DMA_BYTES + 4,
    VMS_IRQ_ENABLE = VMS_IRQ_STATUS + 4,
    VMS_DMA_CMD = VMS_IRQ_ENABLE + 4,
    VMS_DMA_NSEGS = VMS_DMA_CMD + 4,
    VMS_SEG_ADDR = VMS_DMA_NSEGS + 4,
    VMS_SEG_LEN = VMS_SEG_ADDR + 8 * MY_RNG_DMA_MAX_SEGS,
    VMS_SEG = VMS_SEG_LEN + 4 * MY_RNG_DMA_MAX_SEGS,
    VMS_SEG_OFF = VMS_SEG + 4,
    VMS_PEND = VMS_SEG_OFF + 4,
    VMS_PEND_POS = VMS_PEND + 8,
    VMS_END = VMS_PEND_POS + 4,
};

/* A big-endian field of 4 or 8 bytes */
static void put_be(uint8_t *p, uint64_t v, unsigned size)
{
    unsigned i;

    for (i = 0; i < size; i++) {
        p[i] = v >> (8 * (size - 1 - i));
    }
}

/* In flight: segment 0 (0x18000 bytes) has MY_RNG_DMA_CHUNK written */
static const Seg bad_stream_segs[] = {
    { BUF_ADDR, 0x18000 }, { BUF2_ADDR, 0x8001 },
};

/* Field patches the load must refuse: offset, value, size */
static const struct {
    size_t off;
    uint64_t val;
    unsigned size;
} bad_fields[] = {
    { VMS_ALGO, 4, 4 },
    { VMS_ALGO, 0xffffffff, 4 },
    { VMS_GLIBC_F, 31, 4 },
    { VMS_GLIBC_F, 0x80000000, 4 },
    { VMS_GLIBC_R, 0xffffffff, 4 },
    { VMS_GLIBC_F, 8, 4 },              /* in range, but not 3 after r */
    { VMS_CHACHA_POS, 17, 4 },
    { VMS_CHACHA_POS, 0xffffffff, 4 },
    { VMS_DMA_STATUS, 0x0003, 4 },      /* ERROR without a code */
    { VMS_DMA_STATUS, 0x0201, 4 },      /* a code while BUSY */
    { VMS_DMA_STATUS, 0x0a03, 4 },      /* no such code */
    { VMS_DMA_STATUS, 0x0009, 4 },      /* reserved bit */
    { VMS_DMA_STATUS, 0x00010001, 4 },  /* SEGS_DONE is not seg */
    { VMS_DMA_STATUS, 0x02010002, 4 },  /* SEGS_DONE > MAX_SEGS */
    { VMS_IRQ_STATUS, 2, 4 },
    { VMS_IRQ_ENABLE, 0x80000001, 4 },
    { VMS_DMA_CMD, MY_RNG_DMA_CMD_ABORT, 4 },
    { VMS_DMA_CMD, 0, 4 },
    { VMS_DMA_NSEGS, 0, 4 },
    { VMS_DMA_NSEGS, MY_RNG_DMA_MAX_SEGS + 1, 4 },
    { VMS_DMA_NSEGS, 0xffffffff, 4 },
    { VMS_SEG_ADDR + 8, UINT64_MAX - 0x100, 8 },  /* wraps */
    { VMS_SEG_LEN, 0, 4 },
    { VMS_SEG_LEN, MY_RNG_DMA_CHUNK, 4 },           /* offset == len */
    { VMS_SEG_LEN + 4, MY_RNG_DMA_MAX_BYTES + 1, 4 },
    { VMS_SEG_LEN + 4, 0xf0001, 4 },                /* TOO_LONG */
    { VMS_SEG, 1, 4 },
    { VMS_SEG, 2, 4 },
    { VMS_SEG, 0xffffffff, 4 },
    { VMS_SEG_OFF, 0x18000, 4 },
    { VMS_SEG_OFF, MY_RNG_DMA_CHUNK + 1, 4 },
    { VMS_DMA_BYTES, MY_RNG_DMA_CHUNK + 8, 4 },
    { VMS_PEND_POS, 7, 4 },
    { VMS_PEND_POS, 9, 4 },
    { VMS_PEND_POS, 0xffffffff, 4 },
};

static void bad_stream_control(const char *file)
{
    MyRng dst;

    dst.qts = incoming_from_file(file);
    wait_status(dst.qts, "query-status", "running");
    my_rng_map(&dst);
    g_assert_cmpuint(rd32(&dst, MY_RNG_REG_ALGO), ==, MY_RNG_ALGO_HOST);
    g_assert_cmphex(rd32(&dst, MY_RNG_REG_DMA_COUNT), ==, 0x1234);
    g_assert_cmphex(dma_status(&dst), ==, MY_RNG_DMA_STATE_BUSY);
    g_assert_cmpuint(rd32(&dst, MY_RNG_REG_DMA_BYTES), ==, MY_RNG_DMA_CHUNK);
    /* the rest of segment 0 and all but a byte of segment 1 */
    dma_tick(&dst);
    g_assert_cmphex(dma_status(&dst), ==, MY_RNG_DMA_STATE_BUSY |
                    1 << MY_RNG_DMA_STATUS_SEGS_SHIFT);
    g_assert_cmpuint(rd32(&dst, MY_RNG_REG_DMA_BYTES), ==,
                     2 * MY_RNG_DMA_CHUNK);
    assert_done(&dst, dma_wait(&dst), 2, 0x20001);
    assert_pattern(&dst, BUF2_ADDR + 0x8001, GUARD);
    wr32(&dst, MY_RNG_REG_ALGO, MY_RNG_ALGO_GLIBC);
    check_table(&dst, seed42_table, ARRAY_SIZE(seed42_table));
    my_rng_stop(&dst);
}

static void test_migration_bad_stream(void)
{
    static const uint8_t marker[] = { 0, 0, 0, MY_RNG_ALGO_HOST,
                                      0xa5, 0xa5, 0xa5, 0xa5 };
    g_autofree char *dir = g_dir_make_tmp("my-rng-test-XXXXXX", NULL);
    g_autofree char *file = g_build_filename(dir, "good", NULL);
    g_autofree char *patched = g_build_filename(dir, "patched", NULL);
    g_autofree uint8_t *stream = NULL;
    uint8_t *field = NULL, *p;
    gsize len;
    size_t i;
    MyRng src;

    g_assert_nonnull(dir);
    start_dma_test(&src);
    set_algo_seed(&src, MY_RNG_ALGO_HOST, 0xa5a5a5a5);
    wr32(&src, MY_RNG_REG_IRQ_ENABLE, 1);
    guard_segs(&src, bad_stream_segs, ARRAY_SIZE(bad_stream_segs));
    dma_start(&src, bad_stream_segs, ARRAY_SIZE(bad_stream_segs),
              MY_RNG_DMA_CMD_FILL);
    dma_tick(&src);
    migrate_to_file(&src, file);
    my_rng_stop(&src);
    g_assert_true(g_file_get_contents(file, (char **)&stream, &len, NULL));
    for (p = stream; p + sizeof(marker) <= stream + len; p++) {
        if (!memcmp(p, marker, sizeof(marker))) {
            g_assert_null(field);
            field = p;
        }
    }
    g_assert_nonnull(field);
    g_assert_cmpuint(field + VMS_END - stream, <=, len);

    /* control: the same stream with other latches loads and is used */
    put_be(field + VMS_SEED, 0x42, 4);
    put_be(field + VMS_DMA_COUNT, 0x1234, 4);
    g_assert_true(g_file_set_contents(patched, (char *)stream, len, NULL));
    bad_stream_control(patched);

    for (i = 0; i < ARRAY_SIZE(bad_fields); i++) {
        g_autofree uint8_t *copy = g_memdup2(stream, len);
        QTestState *qts;
        int tries;

        g_test_message("patch at %zu: 0x%" PRIx64, bad_fields[i].off,
                       bad_fields[i].val);
        put_be(copy + (field - stream) + bad_fields[i].off,
               bad_fields[i].val, bad_fields[i].size);
        g_assert_true(g_file_set_contents(patched, (char *)copy, len, NULL));
        qts = incoming_from_file(patched);
        qtest_set_expected_status(qts, EXIT_FAILURE);
        for (tries = 0; qtest_probe_child(qts); tries++) {
            g_assert_cmpint(tries, <, 1200);
            g_usleep(50 * 1000);
        }
        qtest_quit(qts);
    }
    g_unlink(patched);
    g_unlink(file);
    g_rmdir(dir);
}

/*
 * The storm: a seeded random walk of at least STORM_ACCESSES accesses to
 * BAR0 (every size, offset and direction; register writes of any value;
 * DMA commands whose lists and segments point into guest RAM buffers, the
 * device's own BAR, another device's BAR, other MMIO, holes, ROM, the
 * edges of RAM and the top of the address space), with the virtual clock,
 * bus mastering and MSI changing under it.  A model of the registers
 * predicts every value read and every DMA outcome; guest RAM is laid out
 * in known bytes, so a write anywhere but in the segments the test gave
 * shows.  MY_RNG_STORM_SEED and MY_RNG_STORM_ACCESSES override the seed
 * and the count to explore; the defaults are what CI runs.
 */
#define STORM_SEED              0x6d792d726e672131ULL
#define STORM_ACCESSES          1000000
#define STORM_CHECK_EVERY       50000
#define STORM_GUARD             256
#define STORM_BG                0x5a    /* RAM the test never gives out */
#define STORM_MAILBOX           0x05000000  /* MSI messages land here */
#define STORM_MSI_DATA          0x4d52
#define STORM_BATCH_MAX         256
#define LOW_RAM_END             0xc0000 /* no VGA: RAM up to pc.rom */
#define HIGH_RAM                0x100000
#define EDGE                    0x1000  /* guarded RAM at each RAM edge */
#define SLOT_LEN                (MY_RNG_DMA_MAX_SEGS * MY_RNG_DMA_SEG_SIZE + 16)

enum {
    STORM_LOW = 1, STORM_BIG = 2, STORM_MEDIUM = 16, STORM_SMALL = 64,
    STORM_SLOTS = 8,
    STORM_TARGETS = STORM_LOW + STORM_BIG + STORM_MEDIUM + STORM_SMALL +
                    STORM_SLOTS,
    STORM_FIRST_SLOT = STORM_TARGETS - STORM_SLOTS,
};

/* Guarded RAM at the edges of RAM, only ever given inside straddling ranges */
static const uint64_t storm_edges[] = {
    LOW_RAM_END - EDGE, HIGH_RAM, RAM_END - EDGE,
};

typedef struct StormArea {
    uint64_t addr;
    uint32_t len;
} StormArea;

typedef struct Storm {
    QTestState *qts;
    QPCIBus *bus;
    MyRng a;                /* the device under the storm */
    MyRng b;                /* a second my_rng: nothing may touch it */
    uint64_t bar_a, bar_b;
    uint8_t msi_cap;
    uint16_t msi_flags;     /* without PCI_MSI_FLAGS_ENABLE */
    uint64_t seed, prng, target_accesses;
    StormArea target[STORM_TARGETS];
    uint32_t b_next;        /* index of device B's next RNG vector value */

    /* the model of device A */
    uint32_t algo, dma_count, status, bytes, irq_status, irq_enable;
    uint64_t dma_addr;
    bool bme, msi;
    /* the running command, as latched at START */
    uint32_t nsegs;
    uint64_t seg_addr[MY_RNG_DMA_MAX_SEGS];
    uint32_t seg_len[MY_RNG_DMA_MAX_SEGS];
    /* its end if nothing stops it: DONE, or WRITE_FAULT at a segment */
    uint32_t end_err, end_segs, end_bytes;
    bool unsafe;            /* a segment in RAM the test did not give */

    /* figures */
    uint64_t ops, reads, writes, batch_reads, batch_writes, batches;
    uint64_t cfg_writes, steps, bme_toggles, msi_toggles, msis;
    uint64_t started, ran, rejected, aborts, idle_aborts, unsafe_aborts;
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
    uint32_t i;

    g_test_message("model: algo %u, DMA_ADDR 0x%" PRIx64 ", DMA_COUNT %u, "
                   "DMA_STATUS 0x%x, DMA_BYTES %u, IRQ 0x%x/0x%x, BME %d, "
                   "MSI %d", st->algo, st->dma_addr, st->dma_count,
                   st->status, st->bytes, st->irq_status, st->irq_enable,
                   st->bme, st->msi);
    g_test_message("last command: %u segments, end: error %u, %u segments, "
                   "%u bytes", st->nsegs, st->end_err, st->end_segs,
                   st->end_bytes);
    for (i = 0; i < st->nsegs && i < 16; i++) {
        g_test_message("  segment %u: 0x%" PRIx64 " +0x%x", i,
                       st->seg_addr[i], st->seg_len[i]);
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

static bool range_wraps(uint64_t addr, uint64_t len)
{
    return len && addr + (len - 1) < addr;
}

/* Whether [addr, addr + len) (len >= 1, no wrap) is all guest RAM */
static bool storm_in_ram(uint64_t addr, uint64_t len)
{
    return (addr < LOW_RAM_END && len <= LOW_RAM_END - addr) ||
           (addr >= HIGH_RAM && addr < RAM_END && len <= RAM_END - addr);
}

/* Whether [addr, addr + len) lies inside one buffer the test gives out */
static bool storm_in_target(const Storm *st, uint64_t addr, uint64_t len)
{
    size_t i;

    for (i = 0; i < STORM_TARGETS; i++) {
        const StormArea *t = &st->target[i];

        if (addr >= t->addr && addr - t->addr <= t->len &&
            len <= t->len - (addr - t->addr)) {
            return true;
        }
    }
    return false;
}

static void storm_layout(Storm *st)
{
    StormArea *t = st->target;
    size_t i;

    /* odd lengths and addresses, so segments end anywhere in a word */
    *t++ = (StormArea) { 0x10000, 0x10000 };
    for (i = 0; i < STORM_BIG; i++) {
        *t++ = (StormArea) { 0x01000000 + i * 0x200000, MIB };
    }
    for (i = 0; i < STORM_MEDIUM; i++) {
        *t++ = (StormArea) { 0x02000000 + i * 0x20000 + i * 3,
                             0x10000 - i * 5 };
    }
    for (i = 0; i < STORM_SMALL; i++) {
        *t++ = (StormArea) { 0x03000000 + i * 0x2000 + (i * 37) % 256,
                             0x1000 + i };
    }
    /* list slots: targets too, a segment may overwrite a list */
    for (i = 0; i < STORM_SLOTS; i++) {
        *t++ = (StormArea) { 0x04000000 + i * 0x4000, SLOT_LEN };
    }
    g_assert(t == st->target + STORM_TARGETS);
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

/*
 * Checks guest RAM [addr, addr + len) (RAM only) against what it must
 * hold: PATTERN in the guards and the edges, anything in the targets and
 * the mailbox (checked on its own), STORM_BG everywhere else.
 */
static void storm_check_ram(Storm *st, uint64_t addr, uint64_t len)
{
    g_autofree uint8_t *got = g_malloc(len);
    g_autofree uint8_t *want = g_malloc(len);
    g_autofree uint8_t *any = g_malloc0(len);
    uint64_t i;
    size_t k;

    memset(want, STORM_BG, len);
    for (k = 0; k < STORM_TARGETS; k++) {
        const StormArea *t = &st->target[k];

        mark(t->addr - STORM_GUARD, STORM_GUARD, addr, len, want, PATTERN);
        mark(t->addr + t->len, STORM_GUARD, addr, len, want, PATTERN);
        mark(t->addr, t->len, addr, len, any, 1);
    }
    for (k = 0; k < ARRAY_SIZE(storm_edges); k++) {
        mark(storm_edges[k], EDGE, addr, len, want, PATTERN);
    }
    mark(STORM_MAILBOX - STORM_GUARD, STORM_GUARD, addr, len, want, PATTERN);
    mark(STORM_MAILBOX + 4, STORM_GUARD, addr, len, want, PATTERN);
    mark(STORM_MAILBOX, 4, addr, len, any, 1);

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
    size_t k;

    qtest_memset(st->qts, 0, STORM_BG, LOW_RAM_END);
    qtest_memset(st->qts, HIGH_RAM, STORM_BG, RAM_END - HIGH_RAM);
    for (k = 0; k < STORM_TARGETS; k++) {
        const StormArea *t = &st->target[k];

        qtest_memset(st->qts, t->addr - STORM_GUARD, PATTERN,
                     t->len + 2 * STORM_GUARD);
        qtest_memset(st->qts, t->addr, 0, t->len);
    }
    for (k = 0; k < ARRAY_SIZE(storm_edges); k++) {
        qtest_memset(st->qts, storm_edges[k], PATTERN, EDGE);
    }
    qtest_memset(st->qts, STORM_MAILBOX - STORM_GUARD, PATTERN,
                 4 + 2 * STORM_GUARD);
    qtest_writel(st->qts, STORM_MAILBOX, 0);
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

/* Every guard, the MSI mailbox, device B and two samples of other RAM */
static void storm_check(Storm *st)
{
    size_t k;
    int i;

    for (k = 0; k < STORM_TARGETS; k++) {
        const StormArea *t = &st->target[k];

        storm_check_ram(st, t->addr - STORM_GUARD, STORM_GUARD);
        storm_check_ram(st, t->addr + t->len, STORM_GUARD);
    }
    for (k = 0; k < ARRAY_SIZE(storm_edges); k++) {
        storm_check_ram(st, storm_edges[k], EDGE);
    }
    storm_check_ram(st, STORM_MAILBOX - STORM_GUARD, 2 * STORM_GUARD + 4);
    storm_expect(st, "the MSI mailbox", qtest_readl(st->qts, STORM_MAILBOX),
                 0);
    for (i = 0; i < 2; i++) {
        uint64_t at = HIGH_RAM + below(st, RAM_END - HIGH_RAM - 0x10000);

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

    for (i = 0; i < st->nsegs && pos + st->seg_len[i] <= bytes; i++) {
        pos += st->seg_len[i];
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

/*
 * The checks of a START, in the spec's order, from the model and from the
 * list as it is in guest memory now (a START reads it before any clock
 * runs, so it cannot change in between).  On success the list is latched
 * into the model with the end the command must reach.
 */
static uint32_t storm_predict_start(Storm *st, uint32_t cmd)
{
    uint64_t list_len = (uint64_t)st->dma_count * MY_RNG_DMA_SEG_SIZE;
    g_autofree uint8_t *list = NULL;
    uint64_t total = 0, pos;
    uint32_t i;

    if (cmd != MY_RNG_DMA_CMD_FILL && cmd != MY_RNG_DMA_CMD_FILL_HOST) {
        return MY_RNG_DMA_ERR_BAD_CMD;
    }
    if (!st->bme) {
        return MY_RNG_DMA_ERR_NO_MASTER;
    }
    if (st->dma_count == 0 || st->dma_count > MY_RNG_DMA_MAX_SEGS) {
        return MY_RNG_DMA_ERR_BAD_COUNT;
    }
    if (range_wraps(st->dma_addr, list_len)) {
        return MY_RNG_DMA_ERR_LIST_WRAP;
    }
    if (!storm_in_ram(st->dma_addr, list_len)) {
        return MY_RNG_DMA_ERR_LIST_FAULT;
    }
    list = g_malloc(list_len);
    qtest_memread(st->qts, st->dma_addr, list, list_len);
    for (i = 0; i < st->dma_count; i++) {
        const uint8_t *e = list + i * MY_RNG_DMA_SEG_SIZE;
        uint64_t addr = ldq_le_p(e + MY_RNG_DMA_SEG_ADDR);
        uint32_t len = ldl_le_p(e + MY_RNG_DMA_SEG_LEN);

        if (len == 0 || len > MY_RNG_DMA_MAX_BYTES ||
            ldl_le_p(e + MY_RNG_DMA_SEG_FLAGS) || range_wraps(addr, len)) {
            return MY_RNG_DMA_ERR_BAD_SEGMENT;
        }
        st->seg_addr[i] = addr;
        st->seg_len[i] = len;
        total += len;
    }
    if (total > MY_RNG_DMA_MAX_BYTES) {
        return MY_RNG_DMA_ERR_TOO_LONG;
    }
    st->nsegs = st->dma_count;
    st->end_err = 0;
    st->end_segs = st->nsegs;
    st->end_bytes = total;
    st->unsafe = false;
    for (i = 0, pos = 0; i < st->nsegs; pos += st->seg_len[i++]) {
        if (!storm_in_ram(st->seg_addr[i], st->seg_len[i])) {
            st->end_err = MY_RNG_DMA_ERR_WRITE_FAULT;
            st->end_segs = i;
            st->end_bytes = pos;
            break;
        }
        /* RAM the test did not give (a list from random registers) */
        if (!storm_in_target(st, st->seg_addr[i], st->seg_len[i])) {
            st->unsafe = true;
        }
    }
    return 0;
}

/* A command ended: IRQ_STATUS, and one MSI message if MSI is on */
static void storm_ended(Storm *st, uint32_t err)
{
    bool msi = st->msi && st->irq_enable && st->bme;

    st->irq_status = MY_RNG_IRQ_DMA_DONE;
    if (err) {
        st->errs[err]++;
    } else {
        st->done++;
    }
    storm_expect(st, "the MSI mailbox", qtest_readl(st->qts, STORM_MAILBOX),
                 msi ? STORM_MSI_DATA : 0);
    if (msi) {
        qtest_writel(st->qts, STORM_MAILBOX, 0);
        st->msis++;
    }
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

/*
 * The model's part of a DMA_CMD write, before it is done: what the
 * device must show afterwards.  Returns whether a command ends with it.
 */
static bool storm_cmd_before(Storm *st, uint32_t cmd, uint32_t *end_err)
{
    uint32_t err;

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
    st->started++;
    st->bytes = 0;
    st->status = 0;     /* REJECTED too starts afresh */
    err = storm_predict_start(st, cmd);
    if (err) {
        st->status = storm_status(st, MY_RNG_DMA_STATE_ERROR, err, 0);
        *end_err = err;
        return true;
    }
    st->ran++;
    st->status = MY_RNG_DMA_STATE_BUSY;
    return false;
}

static void storm_write_single(Storm *st, uint32_t off, unsigned size,
                               uint64_t val);

/* After the DMA_CMD write: the device agrees, and the end is signalled */
static void storm_cmd_after(Storm *st, bool ends, uint32_t end_err)
{
    storm_observe(st);
    if (ends) {
        storm_ended(st, end_err);
    } else if (storm_state(st) == MY_RNG_DMA_STATE_BUSY && st->unsafe) {
        /* no chunk has run yet: stop it before it writes RAM */
        st->unsafe = false;
        st->unsafe_aborts++;
        storm_write_single(st, MY_RNG_REG_DMA_CMD, 4, MY_RNG_DMA_CMD_ABORT);
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
    bool glibc = st->algo == MY_RNG_ALGO_GLIBC;

    if (!is_valid_access(off, size, false)) {
        storm_expect(st, "an invalid read", val, 0);
        return;
    }
    switch (off) {
    case MY_RNG_REG_RNG:
        /* glibc outputs are 31 bits */
        storm_expect(st, "RNG bit 31", glibc ? val >> 31 : 0, 0);
        break;
    case MY_RNG_REG_RNG64:
        storm_expect(st, "RNG64 bits 31, 63",
                     glibc ? val & 0x8000000080000000ULL : 0, 0);
        break;
    case MY_RNG_REG_ID:
        storm_expect(st, "ID", val, MY_RNG_ID_VALUE);
        break;
    case MY_RNG_REG_FEATURES:
        storm_expect(st, "FEATURES", val, MY_RNG_FEATURES_VALUE);
        break;
    case MY_RNG_REG_ALGO:
        storm_expect(st, "ALGO", val, st->algo);
        break;
    case MY_RNG_REG_ALGOS:
        storm_expect(st, "ALGOS", val, MY_RNG_ALGOS_VALUE);
        break;
    case MY_RNG_REG_DMA_ADDR_LO:
        storm_expect(st, "DMA_ADDR_LO", val, (uint32_t)st->dma_addr);
        break;
    case MY_RNG_REG_DMA_ADDR_HI:
        storm_expect(st, "DMA_ADDR_HI", val, st->dma_addr >> 32);
        break;
    case MY_RNG_REG_DMA_COUNT:
        storm_expect(st, "DMA_COUNT", val, st->dma_count);
        break;
    case MY_RNG_REG_DMA_STATUS:
        storm_expect(st, "DMA_STATUS", val, st->status);
        break;
    case MY_RNG_REG_DMA_BYTES:
        storm_expect(st, "DMA_BYTES", val, st->bytes);
        break;
    case MY_RNG_REG_DMA_MAX_SEGS:
        storm_expect(st, "DMA_MAX_SEGS", val, MY_RNG_DMA_MAX_SEGS);
        break;
    case MY_RNG_REG_DMA_MAX_BYTES:
        storm_expect(st, "DMA_MAX_BYTES", val, MY_RNG_DMA_MAX_BYTES);
        break;
    case MY_RNG_REG_IRQ_STATUS:
        storm_expect(st, "IRQ_STATUS", val, st->irq_status);
        break;
    case MY_RNG_REG_IRQ_ENABLE:
        storm_expect(st, "IRQ_ENABLE", val, st->irq_enable);
        break;
    default:
        /* ENTROPY: any value */
        break;
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

/* One round trip, many writes: bytes, or one byte repeated (memset) */
static void storm_batch_write(Storm *st, uint32_t off, uint32_t len,
                              const uint8_t *buf, bool memset_byte)
{
    uint32_t poff[STORM_BATCH_MAX];
    unsigned psize[STORM_BATCH_MAX];
    bool cmd = false, ends = false;
    uint32_t end_err = 0;
    unsigned n, i;

    n = storm_pieces(off, len, poff, psize);
    for (i = 0; i < n; i++) {
        uint64_t val = 0;

        if (!is_valid_access(poff[i], psize[i], true)) {
            continue;
        }
        memcpy(&val, buf + (poff[i] - off), psize[i]);
        val = le64_to_cpu(val);
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

static void storm_op_single(Storm *st)
{
    uint32_t off;
    unsigned size;

    storm_pick_access(st, &off, &size);
    if (chance(st, 50)) {
        storm_read_single(st, off, size);
    } else {
        storm_write_single(st, off, size, storm_value(st));
    }
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

/* A segment inside one of the test's buffers */
static void storm_good_seg(Storm *st, uint64_t *addr, uint32_t *len)
{
    unsigned k = below(st, 100);
    const StormArea *t;
    uint32_t max;

    if (k < 10) {
        t = &st->target[0];
    } else if (k < 20) {
        t = &st->target[STORM_LOW + below(st, STORM_BIG)];
    } else if (k < 45) {
        t = &st->target[STORM_LOW + STORM_BIG + below(st, STORM_MEDIUM)];
    } else if (k < 85) {
        t = &st->target[STORM_LOW + STORM_BIG + STORM_MEDIUM +
                        below(st, STORM_SMALL)];
    } else {
        t = &st->target[STORM_FIRST_SLOT + below(st, STORM_SLOTS)];
    }
    k = below(st, 100);
    max = k < 60 ? 64 : k < 90 ? 4096 : t->len;
    *len = 1 + below(st, MIN(max, t->len));
    *addr = t->addr + below(st, t->len - *len + 1);
}

/*
 * An address anywhere but in the test's buffers: registers (the device's
 * own, device B's, the IOAPIC, HPET, LAPIC/MSI window), holes, ROM, the
 * edges of RAM (so a range that is partly RAM: its RAM part is guarded),
 * the top of the address space; *len is a length that suits it.
 */
static uint64_t storm_wild_addr(Storm *st, uint32_t *len)
{
    uint64_t a, edge;

    *len = 1 + below(st, chance(st, 80) ? 64 : 0x2000);
    switch (below(st, 12)) {
    case 0:
        return st->bar_a + below(st, MY_RNG_BAR_SIZE);
    case 1:
        return st->bar_b + below(st, MY_RNG_BAR_SIZE);
    case 2:
        return 0xfec00000 + below(st, 0x1000);
    case 3:
        return 0xfed00000 + below(st, 0x400);
    case 4:
        return 0xfee00000 + below(st, 0x1000);
    case 5:
        return RAM_END + below(st, 0xe0000000 - RAM_END - 0x2000);
    case 6:
        return LOW_RAM_END + below(st, HIGH_RAM - LOW_RAM_END - 0x2000);
    case 7:
        return 0xfffc0000 + below(st, 0x40000);
    case 8:
        return (1ULL << 32) + below(st, 1ULL << 40);
    case 9:
        /* across an edge of RAM, its RAM part in the guarded edge */
        a = below(st, EDGE);
        switch (below(st, 3)) {
        case 0:
            edge = LOW_RAM_END;
            a = edge - 1 - a;
            *len = edge - a + 1 + below(st, 0x2000);
            break;
        case 1:
            edge = HIGH_RAM;
            a = edge - 1 - a;
            *len = edge - a + 1 + below(st, EDGE - 1);
            break;
        default:
            edge = RAM_END;
            a = edge - 1 - a;
            *len = edge - a + 1 + below(st, 0x2000);
            break;
        }
        return a;
    case 10:
        /* the top: ending at 2^64 or wrapping */
        a = UINT64_MAX - below(st, 0x1000);
        if (chance(st, 50)) {
            *len = -a;
        }
        return a;
    default:
        return storm_rand(st);
    }
}

/* A segment list entry: mostly good, sometimes wild or malformed */
static void storm_seg(Storm *st, Seg *s, bool clean)
{
    s->flags = 0;
    if (clean || chance(st, 80)) {
        storm_good_seg(st, &s->addr, &s->len);
    } else {
        s->addr = storm_wild_addr(st, &s->len);
    }
    if (clean) {
        return;
    }
    switch (below(st, 50)) {
    case 0:
        s->len = 0;
        break;
    case 1:
        s->len = MY_RNG_DMA_MAX_BYTES + 1 + below(st, 1000);
        break;
    case 2:
        s->len = storm_rand(st);
        break;
    case 3:
        s->flags = 1u << below(st, 32);
        break;
    default:
        break;
    }
}

/* Runs the virtual clock; the device must have done what the model says */
static void storm_step(Storm *st, int64_t ns)
{
    uint32_t old = st->bytes, status, bytes, err;
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
    storm_expect_true(st, "DMA_BYTES past the end", bytes <= st->end_bytes);
    st->bytes = bytes;
    if (st_state(status) == MY_RNG_DMA_STATE_BUSY) {
        st->status = storm_status(st, MY_RNG_DMA_STATE_BUSY, 0,
                                  storm_segs_for(st, bytes));
        storm_expect(st, "DMA_STATUS while BUSY", status, st->status);
        /* a tick was due: it must have stopped or moved the command */
        storm_expect_true(st, "no chunk was due or BME is on",
                          ns < MY_RNG_DMA_TICK_NS || st->bme);
        storm_expect_true(st, "a command made no progress",
                          ns < MY_RNG_DMA_TICK_NS || bytes > old);
        return;
    }
    err = st_error(status);
    if (err == MY_RNG_DMA_ERR_NO_MASTER) {
        storm_expect_true(st, "NO_MASTER with BME on", !st->bme);
        st->status = storm_status(st, MY_RNG_DMA_STATE_ERROR, err,
                                  storm_segs_for(st, bytes));
    } else {
        /* the end nothing stopped: as predicted at START */
        storm_expect(st, "DMA_BYTES at the end", bytes, st->end_bytes);
        st->status = storm_status(st, st->end_err ? MY_RNG_DMA_STATE_ERROR :
                                  MY_RNG_DMA_STATE_DONE, st->end_err,
                                  st->end_segs);
    }
    storm_expect(st, "DMA_STATUS at the end", status, st->status);
    storm_ended(st, err);
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

/* Writes a list (or not, if it is wild), the registers, and a command */
static void storm_op_dma(Storm *st)
{
    static const uint32_t bad_cmds[] = { 0, 2, 5, 6, 7, 8, 0x42, UINT32_MAX };
    Seg segs[MY_RNG_DMA_MAX_SEGS];
    uint8_t e[MY_RNG_DMA_MAX_SEGS * MY_RNG_DMA_SEG_SIZE];
    bool clean = chance(st, 40);
    uint32_t n, count, cmd, i, len;
    uint64_t list;

    if (storm_state(st) == MY_RNG_DMA_STATE_BUSY && chance(st, 60)) {
        storm_settle(st);
    }
    /* mostly with bus mastering, so that most commands run */
    if (!st->bme && chance(st, 80)) {
        storm_toggle_bme(st);
    }
    n = chance(st, 90) ? 1 + below(st, 8) : 1 + below(st, MY_RNG_DMA_MAX_SEGS);
    for (i = 0; i < n; i++) {
        storm_seg(st, &segs[i], clean);
        stq_le_p(e + i * MY_RNG_DMA_SEG_SIZE + MY_RNG_DMA_SEG_ADDR,
                 segs[i].addr);
        stl_le_p(e + i * MY_RNG_DMA_SEG_SIZE + MY_RNG_DMA_SEG_LEN,
                 segs[i].len);
        stl_le_p(e + i * MY_RNG_DMA_SEG_SIZE + MY_RNG_DMA_SEG_FLAGS,
                 segs[i].flags);
    }
    count = n;
    if (clean || chance(st, 85)) {
        list = st->target[STORM_FIRST_SLOT + below(st, STORM_SLOTS)].addr +
               below(st, 16);
        qtest_memwrite(st->qts, list, e, n * MY_RNG_DMA_SEG_SIZE);
    } else {
        list = storm_wild_addr(st, &len);
    }
    if (!clean && chance(st, 10)) {
        count = chance(st, 50) ? below(st, 2 * MY_RNG_DMA_MAX_SEGS) :
                                 storm_rand(st);
    }
    if (clean || chance(st, 85)) {
        cmd = chance(st, 70) ? MY_RNG_DMA_CMD_FILL : MY_RNG_DMA_CMD_FILL_HOST;
    } else if (chance(st, 70)) {
        cmd = bad_cmds[below(st, ARRAY_SIZE(bad_cmds))];
    } else {
        cmd = MY_RNG_DMA_CMD_ABORT;
    }
    storm_write_single(st, MY_RNG_REG_DMA_ADDR_LO, 4, list);
    storm_write_single(st, MY_RNG_REG_DMA_ADDR_HI, 4, list >> 32);
    storm_write_single(st, MY_RNG_REG_DMA_COUNT, 4, count);
    storm_write_single(st, MY_RNG_REG_DMA_CMD, 4, cmd);
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
}

static void storm_toggle_msi(Storm *st)
{
    st->msi = !st->msi;
    qpci_config_writew(st->a.dev, st->msi_cap + PCI_MSI_FLAGS,
                       st->msi_flags | (st->msi ? PCI_MSI_FLAGS_ENABLE : 0));
    st->msi_toggles++;
    st->cfg_writes++;
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

static void storm_setup(Storm *st)
{
    const char *seed = g_getenv("MY_RNG_STORM_SEED");
    const char *count = g_getenv("MY_RNG_STORM_ACCESSES");

    memset(st, 0, sizeof(*st));
    st->seed = seed ? g_ascii_strtoull(seed, NULL, 0) : STORM_SEED;
    st->target_accesses = count ? g_ascii_strtoull(count, NULL, 0) :
                                  STORM_ACCESSES;
    st->prng = st->seed;
    st->qts = qtest_init("-nodefaults -m 128M -device my_rng -device my_rng");
    storm_map(st);
    storm_layout(st);
    storm_fill_ram(st);

    /* device B: seeded, a few values read, registers set, then left */
    set_algo_seed(&st->b, MY_RNG_ALGO_CHACHA20, 0x42);
    wr32(&st->b, MY_RNG_REG_DMA_ADDR_LO, 0x5a5a5a5a);
    wr32(&st->b, MY_RNG_REG_IRQ_ENABLE, 1);
    storm_check_b(st);

    /* A's MSI goes to the mailbox when enabled */
    st->msi_cap = qpci_find_capability(st->a.dev, PCI_CAP_ID_MSI, 0);
    g_assert_cmpuint(st->msi_cap, !=, 0);
    st->msi_flags = qpci_config_readw(st->a.dev, st->msi_cap + PCI_MSI_FLAGS);
    qpci_config_writel(st->a.dev, st->msi_cap + PCI_MSI_ADDRESS_LO,
                       STORM_MAILBOX);
    qpci_config_writel(st->a.dev, st->msi_cap + PCI_MSI_ADDRESS_HI, 0);
    qpci_config_writew(st->a.dev, st->msi_cap + PCI_MSI_DATA_64,
                       STORM_MSI_DATA);
    st->bme = true;
    st->algo = MY_RNG_ALGO_GLIBC;
    st->next_check = STORM_CHECK_EVERY;
    storm_observe(st);
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
                   " batches); DMA: %" PRIu64 " commands started, %" PRIu64
                   " ran, %" PRIu64 " done, errors by code {%s}, %" PRIu64
                   " rejected, %" PRIu64 " idle ABORTs, %" PRIu64
                   " unsafe lists stopped, %" PRIu64 " MSI messages; %"
                   PRIu64 " clock steps, %" PRIu64 " BME and %" PRIu64
                   " MSI toggles; %" PRIu64 " guard checks, %" PRIu64
                   " MiB of RAM compared",
                   st->seed, storm_accesses(st), st->reads, st->writes,
                   st->batch_reads, st->batch_writes, st->batches,
                   st->started, st->ran, st->done, errs->str, st->rejected,
                   st->idle_aborts, st->unsafe_aborts, st->msis, st->steps,
                   st->bme_toggles, st->msi_toggles, st->guard_checks,
                   st->ram_checked / MIB);
}

/* After the storm: every algorithm replays its vectors, by MMIO and DMA */
static void storm_replay(Storm *st)
{
    const Seg fill[] = { { BUF_ADDR + 3, VEC_BYTES } };
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
        dma_fill_block(&st->a, vec_find(algo, 0x42, 64), fill, 1);
    }
}

static void test_dma_storm(void)
{
    g_autofree Storm *st = g_new(Storm, 1);
    QDict *rsp;
    int64_t t0 = g_get_monotonic_time();
    unsigned k;

    storm_setup(st);
    g_test_message("storm: seed 0x%" PRIx64 ", %" PRIu64 " accesses",
                   st->seed, st->target_accesses);
    while (storm_accesses(st) < st->target_accesses) {
        if (storm_accesses(st) >= st->next_check) {
            storm_check(st);
            st->next_check += STORM_CHECK_EVERY;
        }
        st->ops++;
        k = below(st, 1000);
        if (k < 560) {
            storm_op_single(st);
        } else if (k < 620) {
            storm_op_batch(st, false);
        } else if (k < 660) {
            storm_op_batch(st, true);
        } else if (k < 700) {
            storm_op_algo_seed(st);
        } else if (k < 820) {
            storm_op_dma(st);
        } else if (k < 840) {
            storm_write_single(st, MY_RNG_REG_DMA_CMD, 4,
                               MY_RNG_DMA_CMD_ABORT);
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

    /* the storm is over: the last command ends, QEMU is alive */
    storm_settle(st);
    storm_expect(st, "ID after the storm", rd32(&st->a, MY_RNG_REG_ID),
                 MY_RNG_ID_VALUE);
    storm_check(st);
    storm_check_ram(st, 0, LOW_RAM_END);
    for (k = 0; k < (RAM_END - HIGH_RAM) / MIB; k++) {
        storm_check_ram(st, HIGH_RAM + (uint64_t)k * MIB, MIB);
    }
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
    static const char *const algo_names[] = {
        "glibc", "xoshiro256pp", "chacha20",
    };
    uint32_t algo;

    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/my-rng/pci-config", test_pci_config);
    qtest_add_func("/my-rng/info-registers", test_info_registers);
    qtest_add_func("/my-rng/v1-tables", test_v1_tables);
    for (algo = MY_RNG_ALGO_GLIBC; algo <= MY_RNG_ALGO_CHACHA20; algo++) {
        g_autofree char *path = g_strdup_printf("/my-rng/vectors/%s",
                                                algo_names[algo]);

        qtest_add_data_func(path, GUINT_TO_POINTER(algo), test_vectors);
    }
    qtest_add_func("/my-rng/reseed-replay", test_reseed_replay);
    qtest_add_func("/my-rng/algo-select", test_algo_select);
    qtest_add_func("/my-rng/host-entropy", test_host_entropy);
    qtest_add_func("/my-rng/bad-access-sweep", test_bad_access_sweep);
    qtest_add_func("/my-rng/reset", test_reset);
    for (algo = MY_RNG_ALGO_GLIBC; algo <= MY_RNG_ALGO_CHACHA20; algo++) {
        g_autofree char *path = g_strdup_printf("/my-rng/migration/%s",
                                                algo_names[algo]);

        qtest_add_data_func(path, GUINT_TO_POINTER(algo), test_migration);
    }
    qtest_add_func("/my-rng/migration/bad-stream", test_migration_bad_stream);
    qtest_add_func("/my-rng/savevm-loadvm", test_savevm_loadvm);
    for (algo = MY_RNG_ALGO_GLIBC; algo <= MY_RNG_ALGO_CHACHA20; algo++) {
        g_autofree char *path = g_strdup_printf("/my-rng/dma/vectors/%s",
                                                algo_names[algo]);

        qtest_add_data_func(path, GUINT_TO_POINTER(algo), test_dma_vectors);
    }
    qtest_add_func("/my-rng/dma/host", test_dma_host);
    qtest_add_func("/my-rng/dma/start-errors", test_dma_start_errors);
    qtest_add_func("/my-rng/dma/write-fault", test_dma_write_fault);
    qtest_add_func("/my-rng/dma/no-master", test_dma_no_master);
    qtest_add_func("/my-rng/dma/abort", test_dma_abort);
    qtest_add_func("/my-rng/dma/busy-rejected", test_dma_busy);
    qtest_add_func("/my-rng/dma/intx", test_dma_intx);
    qtest_add_func("/my-rng/dma/msi", test_dma_msi);
    qtest_add_func("/my-rng/dma/reset", test_dma_reset);
    qtest_add_func("/my-rng/dma/migration", test_dma_migration);
    qtest_add_func("/my-rng/dma/savevm-loadvm", test_dma_savevm);
    qtest_add_func("/my-rng/dma/storm", test_dma_storm);

    return g_test_run();
}
