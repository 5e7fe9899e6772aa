/*
 * my-rng: emulated PCI random number generator (PCI 1234:cafe)
 *
 * Register ABI 2.0; the first two registers (RNG at 0x0, SEED at 0x4) are
 * the v1 contract and must keep returning glibc random() numbers after a
 * seed, because guests compare them against known tables.  The register
 * map and the algorithms are specified in spec/my-rng.rst of the my-rng
 * project.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qemu/units.h"
#include "qemu/guest-random.h"
#include "hw/pci/pci_device.h"
#include "migration/vmstate.h"
#include "qom/object.h"
#include "trace.h"

#define TYPE_MY_RNG "my_rng"
OBJECT_DECLARE_SIMPLE_TYPE(MyRngState, MY_RNG)

#define MY_RNG_DEVICE_ID        0xcafe
#define MY_RNG_REVISION         0x10
#define MY_RNG_BAR_SIZE         (4 * KiB)

/* Register offsets (BAR0) */
#define MY_RNG_REG_RNG          0x000
#define MY_RNG_REG_SEED         0x004
#define MY_RNG_REG_ID           0x008
#define MY_RNG_REG_FEATURES     0x00c
#define MY_RNG_REG_ALGO         0x010
#define MY_RNG_REG_ALGOS        0x014
#define MY_RNG_REG_ENTROPY      0x018
#define MY_RNG_REG_RNG64        0x020
#define MY_RNG_DMA_START        0x040
#define MY_RNG_DMA_END          0x080

/* "MR" magic, ABI major 2, minor 0 */
#define MY_RNG_ID_VALUE         0x4d520200u

#define MY_RNG_FEAT_RNG64       (1u << 0)
#define MY_RNG_FEAT_ALGO        (1u << 1)
#define MY_RNG_FEAT_ENTROPY     (1u << 2)
#define MY_RNG_FEATURES_VALUE   (MY_RNG_FEAT_RNG64 | MY_RNG_FEAT_ALGO | \
                                 MY_RNG_FEAT_ENTROPY)

enum {
    MY_RNG_ALGO_GLIBC = 0,
    MY_RNG_ALGO_XOSHIRO256PP = 1,
    MY_RNG_ALGO_CHACHA20 = 2,
    MY_RNG_ALGO_HOST = 3,
    MY_RNG_NUM_ALGOS
};
#define MY_RNG_ALGOS_VALUE      ((1u << MY_RNG_NUM_ALGOS) - 1)

/* glibc random_r() TYPE_3: x^31 + x^3 + 1 */
#define GLIBC_DEG               31
#define GLIBC_SEP               3
#define CHACHA_BLOCK_WORDS      16

typedef struct MyRngGlibc {
    uint32_t state[GLIBC_DEG];
    uint32_t fidx;              /* glibc's fptr as an index into state[] */
    uint32_t ridx;              /* glibc's rptr as an index into state[] */
} MyRngGlibc;

typedef struct MyRngXoshiro {
    uint64_t s[4];
} MyRngXoshiro;

typedef struct MyRngChacha {
    uint32_t key[8];
    uint64_t counter;           /* block counter of the next block */
    uint32_t block[CHACHA_BLOCK_WORDS];
    uint32_t pos;               /* next word of block[]; 16 = used up */
} MyRngChacha;

struct MyRngState {
    PCIDevice parent_obj;

    MemoryRegion mmio;

    uint32_t algo;
    uint32_t seed;              /* last value written to SEED */
    MyRngGlibc glibc;
    MyRngXoshiro xoshiro;
    MyRngChacha chacha;
};

/*
 * Algorithm 0: glibc srandom_r()/random_r() TYPE_3, bit for bit, but per
 * device instance instead of the host's process-global rand() state.
 */
static uint32_t glibc_next(MyRngGlibc *g)
{
    uint32_t val = g->state[g->fidx] += g->state[g->ridx];

    g->fidx = (g->fidx + 1) % GLIBC_DEG;
    g->ridx = (g->ridx + 1) % GLIBC_DEG;
    return val >> 1;
}

static void glibc_seed(MyRngGlibc *g, uint32_t seed)
{
    int32_t word;
    int i;

    /* glibc: "We must make sure the seed is not 0." */
    if (seed == 0) {
        seed = 1;
    }
    word = (int32_t)seed;
    g->state[0] = (uint32_t)word;
    for (i = 1; i < GLIBC_DEG; i++) {
        /* state[i] = 16807 * state[i - 1] % 2147483647, Schrage's method */
        int64_t hi = word / 127773;
        int64_t lo = word % 127773;

        word = 16807 * lo - 2836 * hi;
        if (word < 0) {
            word += 2147483647;
        }
        g->state[i] = (uint32_t)word;
    }
    g->fidx = GLIBC_SEP;
    g->ridx = 0;
    for (i = 0; i < GLIBC_DEG * 10; i++) {
        glibc_next(g);
    }
}

/* SplitMix64, used to expand the 32-bit seed for algorithms 1 and 2 */
static uint64_t splitmix64_next(uint64_t *x)
{
    uint64_t z;

    *x += 0x9e3779b97f4a7c15ULL;
    z = *x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void splitmix64_fill(uint32_t seed, uint64_t out[4])
{
    uint64_t x = seed;
    int i;

    for (i = 0; i < 4; i++) {
        out[i] = splitmix64_next(&x);
    }
}

static inline uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint32_t rotl32(uint32_t x, int k)
{
    return (x << k) | (x >> (32 - k));
}

/* Algorithm 1: xoshiro256++ */
static void xoshiro_seed(MyRngXoshiro *x, uint32_t seed)
{
    splitmix64_fill(seed, x->s);
}

static uint64_t xoshiro_next(MyRngXoshiro *x)
{
    uint64_t *s = x->s;
    uint64_t result = rotl64(s[0] + s[3], 23) + s[0];
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Algorithm 2: ChaCha20 keystream, 64-bit block counter, nonce 0 */
#define CHACHA_QR(a, b, c, d) do {                          \
        a += b; d ^= a; d = rotl32(d, 16);                  \
        c += d; b ^= c; b = rotl32(b, 12);                  \
        a += b; d ^= a; d = rotl32(d, 8);                   \
        c += d; b ^= c; b = rotl32(b, 7);                   \
    } while (0)

static void chacha_refill(MyRngChacha *c)
{
    uint32_t in[CHACHA_BLOCK_WORDS], x[CHACHA_BLOCK_WORDS];
    int i;

    /* "expand 32-byte k" */
    in[0] = 0x61707865;
    in[1] = 0x3320646e;
    in[2] = 0x79622d32;
    in[3] = 0x6b206574;
    memcpy(&in[4], c->key, sizeof(c->key));
    in[12] = (uint32_t)c->counter;
    in[13] = (uint32_t)(c->counter >> 32);
    in[14] = 0;
    in[15] = 0;
    memcpy(x, in, sizeof(x));
    for (i = 0; i < 10; i++) {
        CHACHA_QR(x[0], x[4], x[8], x[12]);
        CHACHA_QR(x[1], x[5], x[9], x[13]);
        CHACHA_QR(x[2], x[6], x[10], x[14]);
        CHACHA_QR(x[3], x[7], x[11], x[15]);
        CHACHA_QR(x[0], x[5], x[10], x[15]);
        CHACHA_QR(x[1], x[6], x[11], x[12]);
        CHACHA_QR(x[2], x[7], x[8], x[13]);
        CHACHA_QR(x[3], x[4], x[9], x[14]);
    }
    for (i = 0; i < CHACHA_BLOCK_WORDS; i++) {
        c->block[i] = x[i] + in[i];
    }
    c->counter++;
    c->pos = 0;
}

static void chacha_seed(MyRngChacha *c, uint32_t seed)
{
    uint64_t k[4];
    int i;

    /* The key is the 32 little-endian bytes of the SplitMix64 outputs */
    splitmix64_fill(seed, k);
    for (i = 0; i < 4; i++) {
        c->key[2 * i] = (uint32_t)k[i];
        c->key[2 * i + 1] = (uint32_t)(k[i] >> 32);
    }
    c->counter = 0;
    memset(c->block, 0, sizeof(c->block));
    c->pos = CHACHA_BLOCK_WORDS;
}

static uint32_t chacha_next(MyRngChacha *c)
{
    if (c->pos >= CHACHA_BLOCK_WORDS) {
        chacha_refill(c);
    }
    return c->block[c->pos++];
}

static void my_rng_reseed(MyRngState *s)
{
    switch (s->algo) {
    case MY_RNG_ALGO_GLIBC:
        glibc_seed(&s->glibc, s->seed);
        break;
    case MY_RNG_ALGO_XOSHIRO256PP:
        xoshiro_seed(&s->xoshiro, s->seed);
        break;
    case MY_RNG_ALGO_CHACHA20:
        chacha_seed(&s->chacha, s->seed);
        break;
    default:
        /* HOST has no state: the seed is only latched */
        break;
    }
}

static uint32_t my_rng_next32(MyRngState *s)
{
    uint32_t v;

    switch (s->algo) {
    case MY_RNG_ALGO_GLIBC:
        return glibc_next(&s->glibc);
    case MY_RNG_ALGO_XOSHIRO256PP:
        /* the low bits of xoshiro256++ are the weaker ones */
        return xoshiro_next(&s->xoshiro) >> 32;
    case MY_RNG_ALGO_CHACHA20:
        return chacha_next(&s->chacha);
    default:
        qemu_guest_getrandom_nofail(&v, sizeof(v));
        return v;
    }
}

static uint64_t my_rng_next64(MyRngState *s)
{
    uint64_t lo, v;

    switch (s->algo) {
    case MY_RNG_ALGO_XOSHIRO256PP:
        return xoshiro_next(&s->xoshiro);
    case MY_RNG_ALGO_HOST:
        qemu_guest_getrandom_nofail(&v, sizeof(v));
        return v;
    default:
        /* glibc and ChaCha20: two 32-bit outputs, low word first */
        lo = my_rng_next32(s);
        return lo | ((uint64_t)my_rng_next32(s) << 32);
    }
}

typedef struct MyRngReg {
    hwaddr offset;
    unsigned size;
    const char *name;
    bool readable;
    bool writable;
} MyRngReg;

static const MyRngReg my_rng_regs[] = {
    { MY_RNG_REG_RNG,      4, "RNG",      true,  false },
    { MY_RNG_REG_SEED,     4, "SEED",     false, true  },
    { MY_RNG_REG_ID,       4, "ID",       true,  false },
    { MY_RNG_REG_FEATURES, 4, "FEATURES", true,  false },
    { MY_RNG_REG_ALGO,     4, "ALGO",     true,  true  },
    { MY_RNG_REG_ALGOS,    4, "ALGOS",    true,  false },
    { MY_RNG_REG_ENTROPY,  4, "ENTROPY",  true,  false },
    { MY_RNG_REG_RNG64,    8, "RNG64",    true,  false },
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
    if (addr >= MY_RNG_DMA_START && addr < MY_RNG_DMA_END) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: %u-byte %s at 0x%03" HWADDR_PRIx
                      ": DMA block not implemented (reserved)\n",
                      TYPE_MY_RNG, size, dir, addr);
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

static uint64_t my_rng_read(void *opaque, hwaddr addr, unsigned size)
{
    MyRngState *s = opaque;
    const MyRngReg *r = my_rng_decode(addr, size, false);
    uint64_t val = 0;
    uint32_t v32;

    if (r) {
        switch (r->offset) {
        case MY_RNG_REG_RNG:
            val = my_rng_next32(s);
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
            val = my_rng_next64(s);
            break;
        default:
            g_assert_not_reached();
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
        my_rng_reseed(s);
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
        my_rng_reseed(s);
        break;
    default:
        g_assert_not_reached();
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
    glibc_seed(&s->glibc, 0);
    xoshiro_seed(&s->xoshiro, 0);
    chacha_seed(&s->chacha, 0);
}

static void my_rng_reset_enter(Object *obj, ResetType type)
{
    trace_my_rng_reset();
    my_rng_reset_state(MY_RNG(obj));
}

static int my_rng_post_load(void *opaque, int version_id)
{
    MyRngState *s = opaque;

    /* Indices come from the stream: never trust them as array indices */
    if (s->algo >= MY_RNG_NUM_ALGOS ||
        s->glibc.fidx >= GLIBC_DEG || s->glibc.ridx >= GLIBC_DEG ||
        (s->glibc.fidx + GLIBC_DEG - s->glibc.ridx) % GLIBC_DEG !=
        GLIBC_SEP ||
        s->chacha.pos > CHACHA_BLOCK_WORDS) {
        return -EINVAL;
    }
    return 0;
}

static const VMStateDescription vmstate_my_rng = {
    .name = TYPE_MY_RNG,
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = my_rng_post_load,
    /* not const: VMStateDescription.fields is non-const in 8.2 */
    .fields = (VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, MyRngState),
        VMSTATE_UINT32(algo, MyRngState),
        VMSTATE_UINT32(seed, MyRngState),
        VMSTATE_UINT32_ARRAY(glibc.state, MyRngState, GLIBC_DEG),
        VMSTATE_UINT32(glibc.fidx, MyRngState),
        VMSTATE_UINT32(glibc.ridx, MyRngState),
        VMSTATE_UINT64_ARRAY(xoshiro.s, MyRngState, 4),
        VMSTATE_UINT32_ARRAY(chacha.key, MyRngState, 8),
        VMSTATE_UINT64(chacha.counter, MyRngState),
        VMSTATE_UINT32_ARRAY(chacha.block, MyRngState, CHACHA_BLOCK_WORDS),
        VMSTATE_UINT32(chacha.pos, MyRngState),
        VMSTATE_END_OF_LIST()
    },
};

static void my_rng_realize(PCIDevice *pdev, Error **errp)
{
    MyRngState *s = MY_RNG(pdev);

    my_rng_reset_state(s);
    memory_region_init_io(&s->mmio, OBJECT(s), &my_rng_ops, s,
                          "my_rng-mmio", MY_RNG_BAR_SIZE);
    pci_register_bar(pdev, 0, PCI_BASE_ADDRESS_SPACE_MEMORY, &s->mmio);
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
    k->vendor_id = PCI_VENDOR_ID_QEMU;
    k->device_id = MY_RNG_DEVICE_ID;
    k->revision = MY_RNG_REVISION;
    k->class_id = PCI_CLASS_OTHERS;

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
