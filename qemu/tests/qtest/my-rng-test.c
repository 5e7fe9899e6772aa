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

/*
 * A migration stream is untrusted input: post_load must refuse indices
 * and an algorithm that would index out of bounds.  The device's fields
 * are found in a real stream by the unique algo/seed pair set up here, and
 * patched one at a time; the destination must then fail the load (exit 1)
 * instead of running.  An unpatched copy with only the seed latch changed
 * must load, which proves the offsets.
 */
enum {
    /* byte offsets in the stream, from the "algo" field (VMState order) */
    VMS_ALGO = 0,
    VMS_SEED = 4,
    VMS_GLIBC_F = 8 + 31 * 4,
    VMS_GLIBC_R = VMS_GLIBC_F + 4,
    VMS_CHACHA_POS = VMS_GLIBC_R + 4 + 4 * 8 + 8 * 4 + 8 + 16 * 4,
};

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

static void test_migration_bad_stream(void)
{
    static const struct {
        size_t off;
        uint32_t val;
    } bad[] = {
        { VMS_ALGO, 4 },
        { VMS_ALGO, 0xffffffff },
        { VMS_GLIBC_F, 31 },
        { VMS_GLIBC_F, 0x80000000 },
        { VMS_GLIBC_R, 0xffffffff },
        { VMS_GLIBC_F, 8 },             /* in range, but not 3 after r */
        { VMS_CHACHA_POS, 17 },
        { VMS_CHACHA_POS, 0xffffffff },
    };
    static const uint8_t marker[] = { 0, 0, 0, MY_RNG_ALGO_HOST,
                                      0xa5, 0xa5, 0xa5, 0xa5 };
    g_autofree char *dir = g_dir_make_tmp("my-rng-test-XXXXXX", NULL);
    g_autofree char *file = g_build_filename(dir, "good", NULL);
    g_autofree char *patched = g_build_filename(dir, "patched", NULL);
    g_autofree uint8_t *stream = NULL;
    uint8_t *field = NULL, *p;
    gsize len;
    size_t i;
    MyRng src, dst;

    g_assert_nonnull(dir);
    my_rng_start(&src, NULL);
    set_algo_seed(&src, MY_RNG_ALGO_HOST, 0xa5a5a5a5);
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
    g_assert_cmpuint(field + VMS_CHACHA_POS + 4 - stream, <=, len);

    /* control: the same stream with seed latch 0x42 loads and is used */
    put_be32(field + VMS_SEED, 0x42);
    g_assert_true(g_file_set_contents(patched, (char *)stream, len, NULL));
    dst.qts = incoming_from_file(patched);
    wait_status(dst.qts, "query-status", "running");
    my_rng_map(&dst);
    g_assert_cmpuint(rd32(&dst, MY_RNG_REG_ALGO), ==, MY_RNG_ALGO_HOST);
    wr32(&dst, MY_RNG_REG_ALGO, MY_RNG_ALGO_GLIBC);
    check_table(&dst, seed42_table, ARRAY_SIZE(seed42_table));
    my_rng_stop(&dst);

    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        g_autofree uint8_t *copy = g_memdup2(stream, len);
        QTestState *qts;
        int tries;

        put_be32(copy + (field - stream) + bad[i].off, bad[i].val);
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

    return g_test_run();
}
