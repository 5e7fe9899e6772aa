/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Register map of the my-rng device, ABI 2.1 (spec/my-rng.rst): generated
 * by cargo xtask vectors from the my-rng-spec crate; do not edit.
 *
 * The ID magic, the FEATURES bits, the algorithm ids and the ioctls are part
 * of the user ABI: <uapi/misc/my_rng.h> has them.
 */
#ifndef _MY_RNG_REGS_H
#define _MY_RNG_REGS_H

#include <linux/bits.h>
#include <linux/build_bug.h>
#include <uapi/misc/my_rng.h>

/* Registers (offsets into BAR0): access, width. */
#define MY_RNG_REG_RNG			0x000	/* R, 4 bytes */
#define MY_RNG_REG_SEED			0x004	/* W, 4 bytes */
#define MY_RNG_REG_ID			0x008	/* R, 4 bytes */
#define MY_RNG_REG_FEATURES		0x00c	/* R, 4 bytes */
#define MY_RNG_REG_ALGO			0x010	/* RW, 4 bytes */
#define MY_RNG_REG_ALGOS		0x014	/* R, 4 bytes */
#define MY_RNG_REG_ENTROPY		0x018	/* R, 4 bytes */
#define MY_RNG_REG_RNG64		0x020	/* R, 8 bytes */
#define MY_RNG_REG_DMA_ADDR_LO		0x040	/* RW, 4 bytes */
#define MY_RNG_REG_DMA_ADDR_HI		0x044	/* RW, 4 bytes */
#define MY_RNG_REG_DMA_COUNT		0x048	/* RW, 4 bytes */
#define MY_RNG_REG_DMA_CMD		0x04c	/* W, 4 bytes */
#define MY_RNG_REG_DMA_STATUS		0x050	/* R, 4 bytes */
#define MY_RNG_REG_DMA_BYTES		0x054	/* R, 4 bytes */
#define MY_RNG_REG_DMA_MAX_SEGS		0x058	/* R, 4 bytes */
#define MY_RNG_REG_DMA_MAX_BYTES	0x05c	/* R, 4 bytes */
#define MY_RNG_REG_IRQ_STATUS		0x060	/* RW, 4 bytes */
#define MY_RNG_REG_IRQ_ENABLE		0x064	/* RW, 4 bytes */

/* Blocks of BAR0: [base, end). */
#define MY_RNG_BAR_SIZE			0x1000	/* BAR0 size */
#define MY_RNG_BASE_END			0x028	/* end of RNG..RNG64 */
#define MY_RNG_DMA_BASE			0x040	/* DMA registers */
#define MY_RNG_DMA_END			0x060
#define MY_RNG_IRQ_BASE			0x060	/* interrupt registers */
#define MY_RNG_IRQ_END			0x068

/* PCI identity (QEMU's vendor id is not in pci_ids.h). */
#define MY_RNG_PCI_VENDOR_ID		0x1234
#define MY_RNG_PCI_DEVICE_ID		0xcafe

/* ID, FEATURES and ALGOS. */
#define MY_RNG_ID_MAGIC_SHIFT		16
#define MY_RNG_ID_MAJOR_SHIFT		8
#define MY_RNG_ID_VERSION_MASK		0xff
#define MY_RNG_ABI_MAJOR		2	/* ID bits 15..8 */
#define MY_RNG_ABI_MINOR		1	/* ID bits 7..0 */
#define MY_RNG_ID_VALUE			0x4d520201
#define MY_RNG_FEATURES_VALUE		0x1f
#define MY_RNG_ALGOS_VALUE		0xf

/* DMA engine: limits, DMA_CMD values. */
#define MY_RNG_DMA_MAX_SEGS_VALUE	512
#define MY_RNG_DMA_MAX_BYTES_VALUE	0x100000
#define MY_RNG_DMA_SEG_SIZE		16	/* list entry */
#define MY_RNG_DMA_CMD_START		BIT(0)
#define MY_RNG_DMA_CMD_SRC_HOST		BIT(1)
#define MY_RNG_DMA_CMD_ABORT		BIT(2)
#define MY_RNG_DMA_CMD_FILL		0x1
#define MY_RNG_DMA_CMD_FILL_HOST	0x3

/* DMA_STATUS: STATE, REJECTED, error code, SEGS_DONE. */
#define MY_RNG_DMA_STATUS_STATE_MASK	GENMASK(1, 0)
#define MY_RNG_DMA_STATE_IDLE		0
#define MY_RNG_DMA_STATE_BUSY		1
#define MY_RNG_DMA_STATE_DONE		2
#define MY_RNG_DMA_STATE_ERROR		3
#define MY_RNG_DMA_STATUS_REJECTED	BIT(2)
#define MY_RNG_DMA_STATUS_ERROR_SHIFT	8
#define MY_RNG_DMA_STATUS_ERROR_MASK	GENMASK(15, 8)
#define MY_RNG_DMA_STATUS_SEGS_SHIFT	16
#define MY_RNG_DMA_STATUS_SEGS_MASK	GENMASK(31, 16)
#define MY_RNG_DMA_ERR_BAD_CMD		1
#define MY_RNG_DMA_ERR_BAD_COUNT	2
#define MY_RNG_DMA_ERR_LIST_WRAP	3
#define MY_RNG_DMA_ERR_LIST_FAULT	4
#define MY_RNG_DMA_ERR_BAD_SEGMENT	5
#define MY_RNG_DMA_ERR_TOO_LONG		6
#define MY_RNG_DMA_ERR_WRITE_FAULT	7
#define MY_RNG_DMA_ERR_NO_MASTER	8
#define MY_RNG_DMA_ERR_ABORTED		9

/* IRQ_STATUS and IRQ_ENABLE bits. */
#define MY_RNG_IRQ_DMA_DONE		BIT(0)
#define MY_RNG_IRQ_MASK			BIT(0)	/* implemented bits */

/*
 * <uapi/misc/my_rng.h> as the spec computes it (ioctl numbers: the
 * generic _IOC layout, checked on x86).
 */
static_assert(sizeof(struct my_rng_info) == 16);
static_assert(sizeof(struct my_rng_seed_read) == 16);
#ifdef CONFIG_X86
static_assert(MY_RNG_IOCTL_RAND == 0x80047101);
static_assert(MY_RNG_IOCTL_SEED == 0x40047101);
static_assert(MY_RNG_IOCTL_RAND64 == 0x80087102);
static_assert(MY_RNG_IOCTL_SET_ALGO == 0x40047103);
static_assert(MY_RNG_IOCTL_GET_ALGO == 0x80047103);
static_assert(MY_RNG_IOCTL_INFO == 0x80107104);
static_assert(MY_RNG_IOCTL_SEED_READ == 0xc0107105);
#endif

#endif /* _MY_RNG_REGS_H */
