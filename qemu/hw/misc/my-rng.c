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
#include "qemu/guest-random.h"
#include "hw/pci/pci_device.h"
#include "migration/vmstate.h"
#include "qom/object.h"
#include "hw/misc/my-rng.h"
#include "my-rng-gen.h"
#include "trace.h"

OBJECT_DECLARE_SIMPLE_TYPE(MyRngState, MY_RNG)

/* ABI 2.0 reserves this block for a DMA engine */
#define MY_RNG_DMA_START        0x040
#define MY_RNG_DMA_END          0x080

struct MyRngState {
    PCIDevice parent_obj;

    MemoryRegion mmio;

    uint32_t algo;
    uint32_t seed;              /* last value written to SEED */
    MyRngGen gen;
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
    my_rng_gen_seed_all(&s->gen, 0);
}

static void my_rng_reset_enter(Object *obj, ResetType type)
{
    trace_my_rng_reset();
    my_rng_reset_state(MY_RNG(obj));
}

static int my_rng_post_load(void *opaque, int version_id)
{
    MyRngState *s = opaque;

    /* The stream is untrusted: algo and the indices select array slots */
    if (s->algo >= MY_RNG_NUM_ALGOS || !my_rng_gen_valid(&s->gen)) {
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
