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
#include "my-rng-qtest.h"
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

static void check_table(MyRng *t, const uint32_t *table, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        g_assert_cmpuint(rd32(t, MY_RNG_REG_RNG), ==, table[i]);
    }
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

    return g_test_run();
}
