/*
 * my-rng PCI random number generator: the guest-visible interface
 *
 * Shared by the device (hw/misc/my-rng.c) and its qtest, so that both use
 * one definition of the register ABI.  The ABI is specified in
 * spec/my-rng.rst of the my-rng project.
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
#define MY_RNG_REG_RNG          0x000
#define MY_RNG_REG_SEED         0x004
#define MY_RNG_REG_ID           0x008
#define MY_RNG_REG_FEATURES     0x00c
#define MY_RNG_REG_ALGO         0x010
#define MY_RNG_REG_ALGOS        0x014
#define MY_RNG_REG_ENTROPY      0x018
#define MY_RNG_REG_RNG64        0x020

/*
 * The register map, X(name, offset, size, readable, writable): an access
 * is valid only at a register's own offset, of its size and in one of its
 * directions; anything else is a guest error without effect.
 */
#define MY_RNG_REGS(X)                                          \
    X(RNG,          MY_RNG_REG_RNG,         4, true,  false)    \
    X(SEED,         MY_RNG_REG_SEED,        4, false, true)     \
    X(ID,           MY_RNG_REG_ID,          4, true,  false)    \
    X(FEATURES,     MY_RNG_REG_FEATURES,    4, true,  false)    \
    X(ALGO,         MY_RNG_REG_ALGO,        4, true,  true)     \
    X(ALGOS,        MY_RNG_REG_ALGOS,       4, true,  false)    \
    X(ENTROPY,      MY_RNG_REG_ENTROPY,     4, true,  false)    \
    X(RNG64,        MY_RNG_REG_RNG64,       8, true,  false)

/* ID: "MR" magic, ABI major 2, minor 0 */
#define MY_RNG_ID_VALUE         0x4d520200u

#define MY_RNG_FEAT_RNG64       (1u << 0)
#define MY_RNG_FEAT_ALGO        (1u << 1)
#define MY_RNG_FEAT_ENTROPY     (1u << 2)
#define MY_RNG_FEATURES_VALUE   (MY_RNG_FEAT_RNG64 | MY_RNG_FEAT_ALGO | \
                                 MY_RNG_FEAT_ENTROPY)

/* ALGO values */
#define MY_RNG_ALGO_GLIBC       0
#define MY_RNG_ALGO_XOSHIRO256PP 1
#define MY_RNG_ALGO_CHACHA20    2
#define MY_RNG_ALGO_HOST        3
#define MY_RNG_NUM_ALGOS        4
#define MY_RNG_ALGOS_VALUE      ((1u << MY_RNG_NUM_ALGOS) - 1)

#endif
