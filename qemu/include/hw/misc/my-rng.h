/*
 * my-rng PCI random number generator: the guest-visible interface
 *
 * Shared by the device (hw/misc/my-rng.c) and its qtests, so that both use
 * one definition of the register ABI.  The ABI is specified in
 * spec/my-rng.rst of the my-rng project; this file is generated from its
 * my-rng-spec crate by cargo xtask vectors: do not edit.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_MISC_MY_RNG_H
#define HW_MISC_MY_RNG_H

#define TYPE_MY_RNG             "my_rng"

/* PCI identity: PCI_VENDOR_ID_QEMU, PCI_CLASS_OTHERS */
#define MY_RNG_VENDOR_ID        0x1234
#define MY_RNG_DEVICE_ID        0xcafe
#define MY_RNG_REVISION         0x10
#define MY_RNG_CLASS            0x00ff
#define MY_RNG_BAR_SIZE         0x1000

/* Register offsets in BAR0 */
#define MY_RNG_REG_RNG           0x000
#define MY_RNG_REG_SEED          0x004
#define MY_RNG_REG_ID            0x008
#define MY_RNG_REG_FEATURES      0x00c
#define MY_RNG_REG_ALGO          0x010
#define MY_RNG_REG_ALGOS         0x014
#define MY_RNG_REG_ENTROPY       0x018
#define MY_RNG_REG_RNG64         0x020
#define MY_RNG_REG_DMA_ADDR_LO   0x040
#define MY_RNG_REG_DMA_ADDR_HI   0x044
#define MY_RNG_REG_DMA_COUNT     0x048
#define MY_RNG_REG_DMA_CMD       0x04c
#define MY_RNG_REG_DMA_STATUS    0x050
#define MY_RNG_REG_DMA_BYTES     0x054
#define MY_RNG_REG_DMA_MAX_SEGS  0x058
#define MY_RNG_REG_DMA_MAX_BYTES 0x05c
#define MY_RNG_REG_IRQ_STATUS    0x060
#define MY_RNG_REG_IRQ_ENABLE    0x064

/*
 * The register map, X(name, offset, size, readable, writable): an access
 * is valid only at a register's own offset, of its size and in one of its
 * directions; anything else is a guest error without effect.
 */
#define MY_RNG_REGS(X)                                             \
    X(RNG,           MY_RNG_REG_RNG,           4, true,  false)    \
    X(SEED,          MY_RNG_REG_SEED,          4, false, true)     \
    X(ID,            MY_RNG_REG_ID,            4, true,  false)    \
    X(FEATURES,      MY_RNG_REG_FEATURES,      4, true,  false)    \
    X(ALGO,          MY_RNG_REG_ALGO,          4, true,  true)     \
    X(ALGOS,         MY_RNG_REG_ALGOS,         4, true,  false)    \
    X(ENTROPY,       MY_RNG_REG_ENTROPY,       4, true,  false)    \
    X(RNG64,         MY_RNG_REG_RNG64,         8, true,  false)    \
    X(DMA_ADDR_LO,   MY_RNG_REG_DMA_ADDR_LO,   4, true,  true)     \
    X(DMA_ADDR_HI,   MY_RNG_REG_DMA_ADDR_HI,   4, true,  true)     \
    X(DMA_COUNT,     MY_RNG_REG_DMA_COUNT,     4, true,  true)     \
    X(DMA_CMD,       MY_RNG_REG_DMA_CMD,       4, false, true)     \
    X(DMA_STATUS,    MY_RNG_REG_DMA_STATUS,    4, true,  false)    \
    X(DMA_BYTES,     MY_RNG_REG_DMA_BYTES,     4, true,  false)    \
    X(DMA_MAX_SEGS,  MY_RNG_REG_DMA_MAX_SEGS,  4, true,  false)    \
    X(DMA_MAX_BYTES, MY_RNG_REG_DMA_MAX_BYTES, 4, true,  false)    \
    X(IRQ_STATUS,    MY_RNG_REG_IRQ_STATUS,    4, true,  true)     \
    X(IRQ_ENABLE,    MY_RNG_REG_IRQ_ENABLE,    4, true,  true)

/* ID: "MR" magic, ABI major and minor */
#define MY_RNG_ID_VALUE         0x4d520201u

#define MY_RNG_FEAT_RNG64       (1u << 0)
#define MY_RNG_FEAT_ALGO        (1u << 1)
#define MY_RNG_FEAT_ENTROPY     (1u << 2)
#define MY_RNG_FEAT_DMA         (1u << 3)
#define MY_RNG_FEAT_IRQ         (1u << 4)
#define MY_RNG_FEATURES_VALUE   0x1fu

/* ALGO values */
#define MY_RNG_ALGO_GLIBC        0
#define MY_RNG_ALGO_XOSHIRO256PP 1
#define MY_RNG_ALGO_CHACHA20     2
#define MY_RNG_ALGO_HOST         3
#define MY_RNG_NUM_ALGOS         4
#define MY_RNG_ALGOS_VALUE       0xfu

/* DMA engine limits (DMA_MAX_SEGS, DMA_MAX_BYTES) */
#define MY_RNG_DMA_MAX_SEGS     512
#define MY_RNG_DMA_MAX_BYTES    0x100000

/*
 * Segment list entry in guest memory, little-endian: u64 bus address,
 * u32 length (1..MY_RNG_DMA_MAX_BYTES), u32 flags (must be 0).
 */
#define MY_RNG_DMA_SEG_SIZE     16
#define MY_RNG_DMA_SEG_ADDR     0
#define MY_RNG_DMA_SEG_LEN      8
#define MY_RNG_DMA_SEG_FLAGS    12

/* DMA_CMD: bit 0 START, bit 1 SRC_HOST, bit 2 ABORT; only these values */
#define MY_RNG_DMA_CMD_START     (1u << 0)
#define MY_RNG_DMA_CMD_SRC_HOST  (1u << 1)
#define MY_RNG_DMA_CMD_ABORT     (1u << 2)
#define MY_RNG_DMA_CMD_FILL      0x1u
#define MY_RNG_DMA_CMD_FILL_HOST 0x3u

/* DMA_STATUS */
#define MY_RNG_DMA_STATE_MASK         0x3
#define MY_RNG_DMA_STATE_IDLE         0
#define MY_RNG_DMA_STATE_BUSY         1
#define MY_RNG_DMA_STATE_DONE         2
#define MY_RNG_DMA_STATE_ERROR        3
#define MY_RNG_DMA_STATUS_REJECTED    (1u << 2)
#define MY_RNG_DMA_STATUS_ERROR_SHIFT 8
#define MY_RNG_DMA_STATUS_ERROR_MASK  (0xffu << 8)
#define MY_RNG_DMA_STATUS_SEGS_SHIFT  16

/* DMA_STATUS.ERROR codes */
#define MY_RNG_DMA_ERR_BAD_CMD     1
#define MY_RNG_DMA_ERR_BAD_COUNT   2
#define MY_RNG_DMA_ERR_LIST_WRAP   3
#define MY_RNG_DMA_ERR_LIST_FAULT  4
#define MY_RNG_DMA_ERR_BAD_SEGMENT 5
#define MY_RNG_DMA_ERR_TOO_LONG    6
#define MY_RNG_DMA_ERR_WRITE_FAULT 7
#define MY_RNG_DMA_ERR_NO_MASTER   8
#define MY_RNG_DMA_ERR_ABORTED     9

/* IRQ_STATUS / IRQ_ENABLE */
#define MY_RNG_IRQ_DMA_DONE     (1u << 0)

/*
 * Not ABI, the model's pace: a command runs on a QEMU_CLOCK_VIRTUAL
 * timer, at most MY_RNG_DMA_CHUNK bytes every MY_RNG_DMA_TICK_NS.
 */
#define MY_RNG_DMA_CHUNK        0x10000
#define MY_RNG_DMA_TICK_NS      10000

#endif
