/*
 * QTest helpers for the my-rng PCI random number generator, shared by
 * my-rng-test.c and my-rng-storm-test.c: register access, the access
 * rules, DMA_STATUS fields and checking a vector block.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MY_RNG_QTEST_H
#define MY_RNG_QTEST_H

#include "libqtest.h"
#include "libqos/pci.h"
#include "hw/pci/pci_regs.h"
#include "hw/misc/my-rng.h"
#include "my-rng-vectors.h"

typedef struct MyRng {
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *dev;
    QPCIBar bar;
    uint64_t bar_size;
} MyRng;

static inline uint32_t rd32(MyRng *t, uint64_t off)
{
    return qpci_io_readl(t->dev, t->bar, off);
}

static inline void wr32(MyRng *t, uint64_t off, uint32_t val)
{
    qpci_io_writel(t->dev, t->bar, off, val);
}

static inline uint64_t rd64(MyRng *t)
{
    return qpci_io_readq(t->dev, t->bar, MY_RNG_REG_RNG64);
}

static inline void set_algo_seed(MyRng *t, uint32_t algo, uint32_t seed)
{
    wr32(t, MY_RNG_REG_ALGO, algo);
    wr32(t, MY_RNG_REG_SEED, seed);
}

static inline uint64_t bar0_addr(MyRng *t)
{
    return qpci_config_readl(t->dev, PCI_BASE_ADDRESS_0) &
           PCI_BASE_ADDRESS_MEM_MASK;
}

static inline uint32_t st_state(uint32_t st)
{
    return st & MY_RNG_DMA_STATE_MASK;
}

static inline uint32_t st_error(uint32_t st)
{
    return (st & MY_RNG_DMA_STATUS_ERROR_MASK) >> MY_RNG_DMA_STATUS_ERROR_SHIFT;
}

static inline uint32_t st_segs(uint32_t st)
{
    return st >> MY_RNG_DMA_STATUS_SEGS_SHIFT;
}

/* The access rules: each register at its offset, size and direction */
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

static inline bool is_valid_access(uint32_t off, unsigned size, bool write)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(reg_map); i++) {
        if (reg_map[i].offset == off && reg_map[i].size == size) {
            return write ? reg_map[i].writable : reg_map[i].readable;
        }
    }
    return false;
}

static inline uint64_t read_bits(MyRng *t, uint32_t bits)
{
    return bits == 32 ? rd32(t, MY_RNG_REG_RNG) : rd64(t);
}

/*
 * Reads all MY_RNG_VEC_COUNT values of vector v (the caller has seeded
 * the device): the verbatim prefix value by value, then every value
 * through the SHA-256 of their little-endian bytes.
 */
static inline void check_vector(MyRng *t, const MyRngVector *v)
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

static inline const MyRngVector *vec_find(uint32_t algo, uint32_t seed,
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

#endif
