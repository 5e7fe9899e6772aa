// SPDX-License-Identifier: GPL-2.0
/*
 * my-rng: driver for the emulated PCI random number generator 1234:cafe.
 *
 * BAR0 holds 32-bit little-endian registers: RNG (next value), SEED (reseed
 * the current algorithm) and, on an ABI 2 device, ID, FEATURES, ALGO, ALGOS,
 * ENTROPY (host entropy that never touches the algorithm state) and the
 * 64-bit RNG64. An ABI 1 device (the original exercise) only has RNG and
 * SEED; it is recognised by the missing magic in the ID register. An ABI 2.1
 * device adds a DMA engine: one command fills a list of memory segments with
 * the RNG64 stream (FILL) or with host entropy (FILL_HOST), and its end
 * raises an interrupt (MSI, or INTx).
 *
 * Each device gets a misc character device, /dev/my_rng_driver for the first
 * one and /dev/my_rng_driver1, 2, ... for the next ones, offering the ioctls
 * of <uapi/misc/my_rng.h> and read() of a byte stream, and, if it has the
 * ENTROPY register, a hw_random source.
 *
 * read() takes one of three paths, all giving the same bytes; the misc
 * device's sysfs attribute read_path selects it: "mmio" (RNG64 register
 * reads, at most 64 KiB per call), "bounce" (DMA into a 16 KiB coherent
 * buffer, then a copy to the caller), "zerocopy" (DMA straight into the
 * caller's pinned pages), or "auto", the default: mmio without DMA, bounce
 * below 4 KiB, zerocopy from 4 KiB on. The DMA paths return at most 1 MiB
 * per call. hw_random reads ENTROPY; with DMA it is served from a pool of
 * two 4 KiB halves of host entropy: while one is handed out, a work item
 * refills the other by DMA; a read that may not wait never sleeps.
 *
 * The stash: with DMA, RAND, RAND64 and SEED_READ are served from a buffer
 * of the current sequence that FILL commands refill, so that a 4-byte RAND
 * costs no register access; the sysfs attribute ioctl_path ("auto",
 * "stash", "mmio") can select register reads instead. It is invisible
 * through the ABI: every consumer of the sequence (read() on every path
 * too) takes the stash's words first, then goes to the device, and SEED,
 * SET_ALGO and SEED_READ drop it, so callers get the one sequence that
 * register reads would give (the spec's "64-bit reads" table). The device
 * runs up to 16 KiB of the sequence ahead of what the driver handed out.
 *
 * Locking: a per-device mutex makes every register sequence atomic with
 * respect to the other users of the device (ioctls, read(), hw_random); it
 * also protects @base, which is NULL once the device has been removed. A DMA
 * command is started and waited for under it: one command at a time, and
 * none interleaved with a register sequence.
 *
 * Lifetime: the per-device state is reference counted. The device holds one
 * reference until its managed resources are released, and every open file
 * holds one. remove() unregisters the character device (misc_deregister()
 * waits for a running open(), which is called under the misc lock), then
 * clears @base under the mutex, before devres unmaps the BAR: calls on files
 * that are still open then fail with -ENODEV, and the state is freed by the
 * last close. It then stops the DMA engine and its interrupt, before devres
 * frees the interrupt and the DMA buffers.
 */

#include <linux/bitfield.h>
#include <linux/bits.h>
#include <linux/build_bug.h>
#include <linux/completion.h>
#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/hw_random.h>
#include <linux/idr.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/kernel.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include <uapi/misc/my_rng.h>

#include "my-rng-regs.h"

#define MY_RNG_NAME		"my_rng"
#define MY_RNG_NODE_NAME	"my_rng_driver"

/* read() through registers: at most this much per call, in chunks of this size. */
#define MY_RNG_READ_MAX		SZ_64K
#define MY_RNG_READ_CHUNK	256

/*
 * read() by DMA: at most 1 MiB per call. "auto" bounces reads of less than
 * a page, where pinning and mapping the caller's pages may cost more than a
 * copy, and lets the device write larger ones in place. Measured under TCG,
 * a command costs about 120 us whatever its path up to 1 KiB; at 4 KiB
 * zero-copy takes 170 us a call and bounce 210 us, at 16 KiB 185 and 370.
 * The bounce buffer takes up to 16 KiB per command.
 */
#define MY_RNG_DMA_READ_MAX	SZ_1M
#define MY_RNG_ZEROCOPY_MIN	SZ_4K
#define MY_RNG_BOUNCE_SIZE	SZ_16K

/*
 * The RAND stash: a refill is one FILL command of 256 bytes after every
 * drop, doubling up to 16 KiB, so that a seed followed by a few RANDs costs
 * one small command and a steady stream one command per 16 KiB.
 */
#define MY_RNG_STASH_MIN	256
#define MY_RNG_STASH_MAX	SZ_16K
#define MY_RNG_STASH_WORDS	(MY_RNG_STASH_MAX / sizeof(__le32))

/*
 * hw_random pool: two halves; the core asks for at most 64 bytes at a time,
 * so one 16 KiB DMA serves 256 or more calls (a 4 KiB read of /dev/hwrng
 * takes 64): the command's fixed cost, an interrupt and a register read,
 * is paid once per four such reads.
 */
#define MY_RNG_POOL_HALF	SZ_16K
#define MY_RNG_POOL_HALVES	2
#define MY_RNG_POOL_ALL		GENMASK(MY_RNG_POOL_HALVES - 1, 0)

/*
 * Longest wait for the end of one command (1 MiB at most): far beyond what
 * the device needs, it only guards against a device that stopped working.
 */
#define MY_RNG_DMA_TIMEOUT	(10 * HZ)

/* Largest segment list allocated (64 KiB), whatever DMA_MAX_SEGS says. */
#define MY_RNG_DMA_SEGS_LIMIT	4096U

/*
 * hw_random quality, in bits of entropy per 1024 bits. ENTROPY comes from
 * the host's getrandom(), but the guest cannot verify that: QEMU's -seed
 * option makes it fully deterministic. Credit a quarter so that this device
 * alone can still initialise the guest's CRNG; the administrator can change
 * it through /sys/class/misc/hw_random/rng_quality.
 */
#define MY_RNG_HWRNG_QUALITY	256

/* Self-test: seed 0x42 gives these values with algorithm 0 (glibc). */
#define MY_RNG_TEST_SEED	0x42
#define MY_RNG_TEST_ROUNDS	2
#define MY_RNG_TEST_NUMBERS	5
#define MY_RNG_TEST_RULE \
	"------------------------------------------------------------------"

static const u32 my_rng_test_expected[MY_RNG_TEST_NUMBERS] = {
	286129175, 1594929109, 971802288, 222134722, 1335014133,
};

static_assert(MY_RNG_BOUNCE_SIZE % sizeof(u64) == 0);
/* A refill (one segment) fits the smallest DMA_MAX_BYTES the driver accepts. */
static_assert(MY_RNG_STASH_MAX <= MY_RNG_BOUNCE_SIZE);
static_assert(MY_RNG_POOL_HALF <= MY_RNG_BOUNCE_SIZE);
static_assert(MY_RNG_STASH_MIN % sizeof(u64) == 0);

/*
 * No sysfs file (perm 0): a built-in driver with a visible parameter owns
 * /sys/module/my_rng, and that would keep the same code from being loaded
 * as my_rng.ko while the built-in copy is disabled (initcall_blacklist).
 */
static bool selftest = IS_BUILTIN(CONFIG_MY_RNG);
module_param(selftest, bool, 0);
MODULE_PARM_DESC(selftest,
		 "Seed twice with 0x42 at probe time and log 5 values per round (default: on if built in)");

static DEFINE_IDA(my_rng_ida);

/* Recent kernels prefer kzalloc_obj(); the older ones this builds on lack it. */
#ifndef kzalloc_obj
#define kzalloc_obj(var)	kzalloc(sizeof(var), GFP_KERNEL)
#endif

/* PCI_IRQ_LEGACY was renamed PCI_IRQ_INTX in 6.8. */
#ifndef PCI_IRQ_INTX
#define PCI_IRQ_INTX		PCI_IRQ_LEGACY
#endif

/* One entry of the segment list the device reads (little-endian). */
struct my_rng_dma_seg {
	__le64 addr;
	__le32 len;
	__le32 flags;
};

static_assert(sizeof(struct my_rng_dma_seg) == MY_RNG_DMA_SEG_SIZE);

/* read() paths, as named in the read_path sysfs attribute. */
enum my_rng_read_path {
	MY_RNG_PATH_AUTO,
	MY_RNG_PATH_MMIO,
	MY_RNG_PATH_BOUNCE,
	MY_RNG_PATH_ZEROCOPY,
};

static const char * const my_rng_path_names[] = {
	[MY_RNG_PATH_AUTO]	= "auto",
	[MY_RNG_PATH_MMIO]	= "mmio",
	[MY_RNG_PATH_BOUNCE]	= "bounce",
	[MY_RNG_PATH_ZEROCOPY]	= "zerocopy",
};

/* Where RAND, RAND64 and SEED_READ take values, as named in ioctl_path. */
enum my_rng_ioctl_path {
	MY_RNG_IOCTL_AUTO,
	MY_RNG_IOCTL_MMIO,
	MY_RNG_IOCTL_STASH,
};

static const char * const my_rng_ioctl_path_names[] = {
	[MY_RNG_IOCTL_AUTO]	= "auto",
	[MY_RNG_IOCTL_MMIO]	= "mmio",
	[MY_RNG_IOCTL_STASH]	= "stash",
};

/**
 * struct my_rng - state of one device
 * @kref:       held by the bound device and by each open file
 * @lock:       serialises register sequences and the stash, protects @base
 * @base:       BAR0 mapping; NULL once the device has been removed
 * @misc:       the character device
 * @hwrng:      the hw_random source (ABI 2 devices with ENTROPY only)
 * @index:      0 for the first device, 1 for the next one, ...
 * @id:         ID register (0 on an ABI 1 device)
 * @features:   FEATURES register (0 on an ABI 1 device)
 * @algos:      ALGOS register (0 on an ABI 1 device)
 * @node_name:  name of the character device
 * @hwrng_name: name of the hw_random source
 * @read_path:  path of read(), set through sysfs
 * @ioctl_path: path of RAND, RAND64 and SEED_READ, set through sysfs
 * @dma:        the DMA engine is in use (the members below are set up)
 * @dev:        the PCI device, for DMA mappings
 * @regs:       BAR0 mapping for the interrupt handler (unlike @base, never
 *              cleared: devres frees the interrupt before unmapping BAR0)
 * @dma_done:   completed by the interrupt at the end of a command
 * @max_segs:   segments per command, DMA_MAX_SEGS (at most the list's size)
 * @msi:        the DMA interrupt is an MSI (not a possibly shared INTx)
 * @max_bytes:  bytes per command, DMA_MAX_BYTES
 * @segs:       segment list (coherent), @max_segs entries
 * @bounce:     coherent bounce buffer of read(), MY_RNG_BOUNCE_SIZE bytes
 * @pool:       coherent hw_random pool, MY_RNG_POOL_HALVES halves
 * @stash:      coherent RAND stash, MY_RNG_STASH_MAX bytes: the LE words of
 *              the FILL stream; words handed out are zeroed
 * @segs_dma:   bus address of @segs
 * @bounce_dma: bus address of @bounce
 * @pool_dma:   bus address of @pool
 * @stash_dma:  bus address of @stash
 * @stash_pos:  next word of @stash to hand out
 * @stash_len:  words of @stash filled; @stash_pos == @stash_len: empty
 * @stash_algo: ALGO when @stash was filled: how its words make values
 * @stash_next: bytes of the next refill
 * @pool_lock:  protects the pool state below
 * @pool_ready: bitmask of the halves full of unused entropy
 * @pool_cur:   half handed out now
 * @pool_pos:   bytes of @pool_cur already handed out
 * @pool_dead:  the device is going away: no more entropy, no refill
 * @pool_work:  refills the empty halves
 * @pool_wait:  woken after a refill, for a hw_random read that may wait
 */
struct my_rng {
	struct kref kref;
	/* Serialises register sequences, DMA commands, the stash; protects @base. */
	struct mutex lock;
	void __iomem *base;
	struct miscdevice misc;
	struct hwrng hwrng;
	int index;
	u32 id;
	u32 features;
	u32 algos;
	const char *node_name;
	const char *hwrng_name;
	enum my_rng_read_path read_path;
	enum my_rng_ioctl_path ioctl_path;

	bool dma;
	struct device *dev;
	void __iomem *regs;
	struct completion dma_done;
	u32 max_segs;
	bool msi;
	u32 max_bytes;
	struct my_rng_dma_seg *segs;
	void *bounce;
	u8 *pool;
	__le32 *stash;
	dma_addr_t segs_dma;
	dma_addr_t bounce_dma;
	dma_addr_t pool_dma;
	dma_addr_t stash_dma;
	u32 stash_pos;
	u32 stash_len;
	u32 stash_algo;
	u32 stash_next;

	/* Protects the pool state; taken without sleeping by hw_random. */
	spinlock_t pool_lock;
	unsigned int pool_ready;
	unsigned int pool_cur;
	unsigned int pool_pos;
	bool pool_dead;
	struct work_struct pool_work;
	wait_queue_head_t pool_wait;
};

static void my_rng_free(struct kref *kref)
{
	struct my_rng *rng = container_of(kref, struct my_rng, kref);

	mutex_destroy(&rng->lock);
	kfree(rng);
}

static void my_rng_put(struct my_rng *rng)
{
	kref_put(&rng->kref, my_rng_free);
}

/*
 * Takes rng->lock for a register sequence if the device is still bound.
 * Returns 0 with the lock held, or -ERESTARTSYS / -ENODEV without it.
 */
static int my_rng_lock_bound(struct my_rng *rng)
{
	if (mutex_lock_interruptible(&rng->lock))
		return -ERESTARTSYS;
	if (!rng->base) {
		mutex_unlock(&rng->lock);
		return -ENODEV;
	}
	return 0;
}

/*
 * Register helpers: the caller holds rng->lock and has checked rng->base.
 */

/* Next 64-bit output: RNG64, or two RNG reads (low half first). */
static u64 my_rng_next64(struct my_rng *rng)
{
	u32 lo, hi;

#ifdef readq
	if (rng->features & MY_RNG_FEATURE_RNG64)
		return readq(rng->base + MY_RNG_REG_RNG64);
#endif
	/* ABI 1 device, or no 8-byte MMIO access on this CPU. */
	lo = readl(rng->base + MY_RNG_REG_RNG);
	hi = readl(rng->base + MY_RNG_REG_RNG);
	return (u64)hi << 32 | lo;
}

static u32 my_rng_cur_algo(struct my_rng *rng)
{
	if (!(rng->features & MY_RNG_FEATURE_ALGO))
		return 0;
	return readl(rng->base + MY_RNG_REG_ALGO);
}

static bool my_rng_algo_valid(struct my_rng *rng, u32 algo)
{
	return (rng->features & MY_RNG_FEATURE_ALGO) && algo < 32 &&
	       (rng->algos & BIT(algo));
}

/*
 * DMA engine: the caller holds rng->lock and has checked rng->base.
 */

static void my_rng_dma_set_seg(struct my_rng *rng, u32 i, dma_addr_t addr,
			       u32 len)
{
	rng->segs[i].addr = cpu_to_le64(addr);
	rng->segs[i].len = cpu_to_le32(len);
	rng->segs[i].flags = 0;
}

/* The bytes of the first @nsegs entries of the segment list. */
static u32 my_rng_dma_list_bytes(struct my_rng *rng, u32 nsegs)
{
	u32 i, total = 0;

	for (i = 0; i < nsegs; i++)
		total += le32_to_cpu(rng->segs[i].len);
	return total;
}

/*
 * Starts @cmd on the first @nsegs entries of the segment list and waits for
 * its end. Returns 0 once it is done, -ERESTARTSYS (only if @intr) or
 * -ETIMEDOUT after aborting it, -EIO if the device ended it with an error.
 * *bytes is set to the number of bytes written in every case: after an
 * abort the device writes nothing more, so the memory can be released.
 */
static int my_rng_dma_run(struct my_rng *rng, u32 cmd, u32 nsegs, bool intr,
			  u32 *bytes)
{
	unsigned long deadline = jiffies + MY_RNG_DMA_TIMEOUT;
	u32 status;
	int ret = 0;

	reinit_completion(&rng->dma_done);
	writel(lower_32_bits(rng->segs_dma), rng->base + MY_RNG_REG_DMA_ADDR_LO);
	writel(upper_32_bits(rng->segs_dma), rng->base + MY_RNG_REG_DMA_ADDR_HI);
	writel(nsegs, rng->base + MY_RNG_REG_DMA_COUNT);
	writel(cmd, rng->base + MY_RNG_REG_DMA_CMD);

	for (;;) {
		long timeout = max_t(long, (long)(deadline - jiffies), 0);
		long left;

		if (intr)
			left = wait_for_completion_interruptible_timeout(&rng->dma_done,
									 timeout);
		else
			left = wait_for_completion_timeout(&rng->dma_done, timeout);
		/* The late interrupt of an aborted command may wake us early. */
		status = readl(rng->base + MY_RNG_REG_DMA_STATUS);
		if (FIELD_GET(MY_RNG_DMA_STATUS_STATE_MASK, status) != MY_RNG_DMA_STATE_BUSY)
			break;
		if (left <= 0) {
			writel(MY_RNG_DMA_CMD_ABORT, rng->base + MY_RNG_REG_DMA_CMD);
			ret = left ? -ERESTARTSYS : -ETIMEDOUT;
			break;
		}
	}
	/*
	 * DONE: every byte of the list is written. Not reading DMA_BYTES then
	 * saves a register round trip (an exit under KVM) per command.
	 */
	if (!ret && FIELD_GET(MY_RNG_DMA_STATUS_STATE_MASK, status) ==
		    MY_RNG_DMA_STATE_DONE)
		*bytes = my_rng_dma_list_bytes(rng, nsegs);
	else
		*bytes = readl(rng->base + MY_RNG_REG_DMA_BYTES);

	if (ret == -ETIMEDOUT)
		dev_err_ratelimited(rng->dev, "DMA command %#x timed out after %u bytes\n",
				    cmd, *bytes);
	else if (!ret && FIELD_GET(MY_RNG_DMA_STATUS_STATE_MASK, status) != MY_RNG_DMA_STATE_DONE)
		ret = -EIO;
	if (ret == -EIO)
		dev_err_ratelimited(rng->dev, "DMA command %#x failed: status %#x\n",
				    cmd, status);
	return ret;
}

/* Position in a DMA-mapped scatterlist. */
struct my_rng_dma_pos {
	struct scatterlist *sg;
	unsigned int left;	/* mapped entries from @sg on */
	u32 off;		/* bytes of @sg already used */
};

/*
 * Walks at most @limit bytes and rng->max_segs segments from @pos, writing
 * them into the segment list if @write. Returns the number of bytes.
 */
static u32 my_rng_dma_walk(struct my_rng *rng, struct my_rng_dma_pos *pos,
			   u32 limit, bool write, u32 *nsegs)
{
	u32 total = 0;

	*nsegs = 0;
	while (pos->left && *nsegs < rng->max_segs && total < limit) {
		u32 len = min(sg_dma_len(pos->sg) - pos->off, limit - total);

		if (write)
			my_rng_dma_set_seg(rng, *nsegs,
					   sg_dma_address(pos->sg) + pos->off, len);
		(*nsegs)++;
		total += len;
		pos->off += len;
		if (pos->off == sg_dma_len(pos->sg)) {
			pos->sg = sg_next(pos->sg);
			pos->left--;
			pos->off = 0;
		}
	}
	return total;
}

/*
 * Fills the DMA-mapped @sgt with the RNG64 stream, in as many commands as
 * the device's limits require. Each command consumes whole outputs (the
 * unused bytes of its last one are discarded), so every command but the
 * last ends on an 8-byte boundary: the bytes are those of the MMIO path.
 * Returns the bytes written before the first error, and that error.
 */
static size_t my_rng_dma_fill_sgt(struct my_rng *rng, struct sg_table *sgt,
				  int *err)
{
	struct my_rng_dma_pos pos = { .sg = sgt->sgl, .left = sgt->nents };
	size_t done = 0;

	*err = 0;
	while (pos.left) {
		struct my_rng_dma_pos end = pos;
		u32 len, nsegs, bytes;

		len = my_rng_dma_walk(rng, &end, rng->max_bytes, false, &nsegs);
		if (end.left)
			len = round_down(len, sizeof(u64));
		if (!len) {
			/* Cannot happen with page-sized segments and max_segs >= 2. */
			*err = -EIO;
			break;
		}
		my_rng_dma_walk(rng, &pos, len, true, &nsegs);
		if (signal_pending(current)) {
			*err = -ERESTARTSYS;
			break;
		}
		*err = my_rng_dma_run(rng, MY_RNG_DMA_CMD_FILL, nsegs, true, &bytes);
		done += min(bytes, len);
		if (*err)
			break;
	}
	return done;
}

/* What a DMA read returns: the bytes done, if any, except after a timeout. */
static ssize_t my_rng_dma_result(size_t done, int err)
{
	if (err == -ETIMEDOUT)
		return -EIO;
	return done ? done : err;
}

/*
 * The RAND stash: the caller holds rng->lock and has checked rng->base.
 */

/* Empties the stash (SEED, SET_ALGO, SEED_READ): its words are of an old sequence. */
static void my_rng_stash_drop(struct my_rng *rng)
{
	if (rng->stash_pos < rng->stash_len)
		memzero_explicit(rng->stash + rng->stash_pos,
				 (rng->stash_len - rng->stash_pos) * sizeof(*rng->stash));
	rng->stash_pos = 0;
	rng->stash_len = 0;
	rng->stash_next = MY_RNG_STASH_MIN;
}

/*
 * Fills the stash with @bytes (a multiple of 8) of the FILL stream under
 * @algo. The wait cannot be interrupted: the device has drawn the words of
 * an interrupted command, and a restarted call would silently skip them. On
 * error the stash stays empty (the device may have advanced: a lost stretch
 * of the sequence, which only a failing device causes).
 */
static int my_rng_stash_fill(struct my_rng *rng, u32 algo, u32 bytes)
{
	u32 done;
	int ret;

	my_rng_dma_set_seg(rng, 0, rng->stash_dma, bytes);
	ret = my_rng_dma_run(rng, MY_RNG_DMA_CMD_FILL, 1, false, &done);
	rng->stash_pos = 0;
	if (ret) {
		memzero_explicit(rng->stash, min(done, bytes));
		rng->stash_len = 0;
		return ret == -ETIMEDOUT ? -EIO : ret;
	}
	rng->stash_algo = algo;
	rng->stash_len = bytes / sizeof(*rng->stash);
	return 0;
}

/* RAND, RAND64 and SEED_READ use the stash: DMA, and ioctl_path is not mmio. */
static bool my_rng_stash_on(struct my_rng *rng)
{
	return rng->dma && READ_ONCE(rng->ioctl_path) != MY_RNG_IOCTL_MMIO;
}

/* The algorithms whose words the stash knows how to hand out. */
static bool my_rng_stash_knows(u32 algo)
{
	return algo <= MY_RNG_ALGO_HOST;
}

/*
 * Makes sure that the stash holds a word, refilling it if it is in use.
 * Returns 0 if it does, 1 if the caller reads registers instead (ioctl_path
 * mmio, no DMA, or an algorithm unknown to the stash), or a refill's error.
 */
static int my_rng_stash_ready(struct my_rng *rng)
{
	u32 algo;
	int ret;

	if (rng->stash_pos < rng->stash_len)
		return 0;
	if (!my_rng_stash_on(rng))
		return 1;
	/* Read at each refill: a raw ALGO write cannot garble the words. */
	algo = my_rng_cur_algo(rng);
	if (!my_rng_stash_knows(algo))
		return 1;
	ret = my_rng_stash_fill(rng, algo, rng->stash_next);
	if (!ret)
		rng->stash_next = min_t(u32, 2 * rng->stash_next, MY_RNG_STASH_MAX);
	return ret;
}

/* Hands out the next word of the stash, which is not empty, once. */
static u32 my_rng_stash_word(struct my_rng *rng)
{
	__le32 *w = &rng->stash[rng->stash_pos++];
	u32 val = le32_to_cpu(*w);

	*w = 0;
	return val;
}

/*
 * A RAND value from the stash, which is not empty: one word, or under
 * xoshiro256++ one output (two words, @stash_pos even) of which RAND is the
 * high half.
 */
static u32 my_rng_stash_rand(struct my_rng *rng)
{
	if (rng->stash_algo == MY_RNG_ALGO_XOSHIRO256PP)
		my_rng_stash_word(rng);
	return my_rng_stash_word(rng);
}

/*
 * read(): takes whole values (two words each) from the stash into @dst, at
 * most @count bytes, and never refills it: the rest of a read goes by its
 * own path. A value whose second word the stash lacks gets it from RNG, as
 * the device's RNG64 would. Returns the bytes: a multiple of 8, or @count.
 */
static size_t my_rng_stash_read(struct my_rng *rng, u8 *dst, size_t count)
{
	size_t done = 0;

	while (done < count && rng->stash_pos < rng->stash_len) {
		size_t len = min_t(size_t, count - done, sizeof(__le64));
		__le32 w[2];

		w[0] = cpu_to_le32(my_rng_stash_word(rng));
		if (rng->stash_pos < rng->stash_len)
			w[1] = cpu_to_le32(my_rng_stash_word(rng));
		else
			w[1] = cpu_to_le32(readl(rng->base + MY_RNG_REG_RNG));
		memcpy(dst + done, w, len);
		done += len;
	}
	return done;
}

/* RAND: the next 32-bit value of the sequence. */
static int my_rng_rand(struct my_rng *rng, u32 *val)
{
	int ret = my_rng_stash_ready(rng);

	if (ret < 0)
		return ret;
	*val = ret ? readl(rng->base + MY_RNG_REG_RNG) : my_rng_stash_rand(rng);
	return 0;
}

/*
 * RAND64: two words, low first: one output under xoshiro256++, two outputs
 * (two RNG reads) otherwise, which may straddle two refills, or the stash's
 * last word and an RNG read once the ioctl path is mmio.
 */
static int my_rng_rand64(struct my_rng *rng, u64 *val)
{
	int ret = my_rng_stash_ready(rng);
	u32 lo, hi;

	if (ret < 0)
		return ret;
	if (ret) {
		*val = my_rng_next64(rng);
		return 0;
	}
	lo = my_rng_stash_word(rng);
	ret = my_rng_stash_ready(rng);
	if (ret < 0)
		return ret;
	hi = ret ? readl(rng->base + MY_RNG_REG_RNG) : my_rng_stash_word(rng);
	*val = (u64)hi << 32 | lo;
	return 0;
}

/*
 * SEED_READ's values by DMA, after SEED: @count RAND values through the
 * stash buffer, in as few commands as it allows. A command fills whole
 * outputs: after an odd count of one-word values the last output's second
 * word stays in the stash, where the next call finds it, so the sequence
 * goes on exactly as after register reads.
 */
static int my_rng_seed_read_dma(struct my_rng *rng, u32 algo, u32 *vals,
				u32 count)
{
	u32 words = algo == MY_RNG_ALGO_XOSHIRO256PP ? 2 : 1;
	u32 done = 0;

	while (done < count) {
		u32 n = min_t(u32, count - done, MY_RNG_STASH_WORDS / words);
		int ret;

		ret = my_rng_stash_fill(rng, algo,
					round_up(n * words * sizeof(u32), sizeof(u64)));
		if (ret)
			return ret;
		while (n--)
			vals[done++] = my_rng_stash_rand(rng);
	}
	return 0;
}

/* SEED_READ with the device locked: seed, drop the stash, take @count values. */
static int my_rng_seed_read_locked(struct my_rng *rng, u32 seed, u32 *vals,
				   u32 count)
{
	u32 algo, i;

	writel(seed, rng->base + MY_RNG_REG_SEED);
	my_rng_stash_drop(rng);
	if (my_rng_stash_on(rng)) {
		algo = my_rng_cur_algo(rng);
		if (my_rng_stash_knows(algo))
			return my_rng_seed_read_dma(rng, algo, vals, count);
	}
	for (i = 0; i < count; i++)
		vals[i] = readl(rng->base + MY_RNG_REG_RNG);
	return 0;
}

/*
 * Character device.
 */

static int my_rng_open(struct inode *inode, struct file *file)
{
	struct my_rng *rng = container_of(file->private_data, struct my_rng,
					  misc);

	/*
	 * misc_open() calls us under the misc lock, which misc_deregister()
	 * takes before the device drops its reference: @rng is alive.
	 */
	kref_get(&rng->kref);
	file->private_data = rng;
	return stream_open(inode, file);
}

static int my_rng_release(struct inode *inode, struct file *file)
{
	my_rng_put(file->private_data);
	return 0;
}

/*
 * read(): the little-endian bytes of successive RNG64 values (RNG values on
 * a device without RNG64). The bytes of a partly copied last value are
 * discarded. On every path, each step with the device locked first takes
 * what the stash holds. The MMIO path reads registers into a small buffer.
 */
static ssize_t my_rng_read_mmio(struct my_rng *rng, char __user *buf,
				size_t count)
{
	union {
		__le64 q[MY_RNG_READ_CHUNK / sizeof(__le64)];
		__le32 l[MY_RNG_READ_CHUNK / sizeof(__le32)];
	} chunk;
	size_t done = 0;
	ssize_t err = 0;

	count = min_t(size_t, count, MY_RNG_READ_MAX);
	while (done < count) {
		size_t len = min_t(size_t, count - done, sizeof(chunk));
		unsigned int i;

		if (signal_pending(current)) {
			err = -ERESTARTSYS;
			break;
		}
		err = my_rng_lock_bound(rng);
		if (err)
			break;
		if (rng->features & MY_RNG_FEATURE_RNG64) {
			i = DIV_ROUND_UP(my_rng_stash_read(rng, (u8 *)&chunk, len),
					 sizeof(__le64));
			for (; i < DIV_ROUND_UP(len, sizeof(__le64)); i++)
				chunk.q[i] = cpu_to_le64(my_rng_next64(rng));
		} else {
			/* No RNG64, no DMA, no stash. */
			for (i = 0; i < DIV_ROUND_UP(len, sizeof(__le32)); i++)
				chunk.l[i] = cpu_to_le32(readl(rng->base +
							       MY_RNG_REG_RNG));
		}
		mutex_unlock(&rng->lock);

		if (copy_to_user(buf + done, &chunk, len)) {
			err = -EFAULT;
			break;
		}
		done += len;
		cond_resched();
	}
	memzero_explicit(&chunk, sizeof(chunk));

	return done ? done : err;
}

/*
 * One chunk of the bounce path, with the device locked: the stash's words,
 * then DMA into the coherent buffer, copied out under the lock (which keeps
 * remove() from freeing it). *bytes is set to the bytes in @chunk.
 */
static int my_rng_bounce_chunk(struct my_rng *rng, u8 *chunk, u32 len,
			       u32 *bytes)
{
	u32 stashed = my_rng_stash_read(rng, chunk, len);
	u32 dma;
	int err;

	*bytes = stashed;
	if (stashed == len)
		return 0;
	my_rng_dma_set_seg(rng, 0, rng->bounce_dma, len - stashed);
	err = my_rng_dma_run(rng, MY_RNG_DMA_CMD_FILL, 1, true, &dma);
	dma = min(dma, len - stashed);
	memcpy(chunk + stashed, rng->bounce, dma);
	memzero_explicit(rng->bounce, dma);
	*bytes += dma;
	return err;
}

/*
 * Bounce path: chunks made with the device locked into a kernel buffer, and
 * copied from there to the caller without the lock, so that no page fault
 * is taken with it.
 */
static ssize_t my_rng_read_bounce(struct my_rng *rng, char __user *buf,
				  size_t count)
{
	size_t size = min_t(size_t, count, MY_RNG_BOUNCE_SIZE);
	size_t done = 0;
	u8 *chunk;
	int err = 0;

	chunk = kvmalloc(size, GFP_KERNEL);
	if (!chunk)
		return -ENOMEM;
	while (done < count) {
		u32 len = min_t(size_t, count - done, MY_RNG_BOUNCE_SIZE);
		u32 bytes;

		if (signal_pending(current)) {
			err = -ERESTARTSYS;
			break;
		}
		err = my_rng_lock_bound(rng);
		if (err)
			break;
		err = my_rng_bounce_chunk(rng, chunk, len, &bytes);
		mutex_unlock(&rng->lock);

		if (copy_to_user(buf + done, chunk, bytes)) {
			err = -EFAULT;
			break;
		}
		done += bytes;
		if (err)
			break;
		cond_resched();
	}
	kvfree_sensitive(chunk, size);

	return my_rng_dma_result(done, err);
}

/* Maps the pinned pages for the device and fills them; caller holds the lock. */
static ssize_t my_rng_fill_pages(struct my_rng *rng, struct page **pages,
				 unsigned int npages, unsigned int offset,
				 size_t count)
{
	struct sg_table sgt;
	size_t done;
	int err;

	err = sg_alloc_table_from_pages(&sgt, pages, npages, offset, count,
					GFP_KERNEL);
	if (err)
		return err;
	err = dma_map_sgtable(rng->dev, &sgt, DMA_FROM_DEVICE, 0);
	if (err) {
		sg_free_table(&sgt);
		return err;
	}
	done = my_rng_dma_fill_sgt(rng, &sgt, &err);
	dma_unmap_sgtable(rng->dev, &sgt, DMA_FROM_DEVICE, 0);
	sg_free_table(&sgt);

	return my_rng_dma_result(done, err);
}

/* Copies @len bytes into the pinned pages, at byte @pos from the first one's start. */
static void my_rng_copy_to_pages(struct page **pages, size_t pos,
				 const void *from, size_t len)
{
	const char *src = from;

	while (len) {
		size_t off = offset_in_page(pos);
		size_t n = min_t(size_t, len, PAGE_SIZE - off);

		memcpy_to_page(pages[pos >> PAGE_SHIFT], off, src, n);
		pos += n;
		src += n;
		len -= n;
	}
}

/*
 * Zero-copy with the device locked: the stash's words are copied into the
 * pinned pages, then the device writes the rest in place.
 */
static ssize_t my_rng_zerocopy_locked(struct my_rng *rng, struct page **pages,
				      unsigned int npages, unsigned int offset,
				      size_t count)
{
	u8 chunk[MY_RNG_READ_CHUNK];
	size_t done = 0, skip;
	ssize_t ret;

	while (done < count) {
		size_t n = my_rng_stash_read(rng, chunk,
					     min(count - done, sizeof(chunk)));

		if (!n)
			break;
		my_rng_copy_to_pages(pages, offset + done, chunk, n);
		done += n;
	}
	memzero_explicit(chunk, sizeof(chunk));
	if (done == count)
		return done;

	skip = (offset + done) >> PAGE_SHIFT;
	ret = my_rng_fill_pages(rng, pages + skip, npages - skip,
				offset_in_page(offset + done), count - done);
	if (ret < 0)
		return done ? done : ret;
	return done + ret;
}

/*
 * Zero-copy path: the device writes the caller's pages. They are pinned
 * before the device is locked (pinning may fault them in); if only a leading
 * part of the buffer can be pinned, that part is filled: a short read. The
 * pages are mapped under the lock, while the device is surely bound.
 */
static ssize_t my_rng_read_zerocopy(struct my_rng *rng, char __user *buf,
				    size_t count)
{
	unsigned long start = (unsigned long)buf;
	unsigned int offset = offset_in_page(start);
	int npages = DIV_ROUND_UP(offset + count, PAGE_SIZE);
	struct page **pages;
	ssize_t ret;
	int pinned;

	pages = kvmalloc_array(npages, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	pinned = pin_user_pages_fast(start & PAGE_MASK, npages, FOLL_WRITE,
				     pages);
	if (pinned <= 0) {
		kvfree(pages);
		return -EFAULT;
	}
	count = min_t(size_t, count, (size_t)pinned * PAGE_SIZE - offset);

	ret = my_rng_lock_bound(rng);
	if (!ret) {
		ret = my_rng_zerocopy_locked(rng, pages, pinned, offset, count);
		mutex_unlock(&rng->lock);
	}
	/* Every command has ended or been aborted: the device is done. */
	unpin_user_pages_dirty_lock(pages, pinned, true);
	kvfree(pages);
	return ret;
}

static enum my_rng_read_path my_rng_path(struct my_rng *rng, size_t count)
{
	enum my_rng_read_path path = READ_ONCE(rng->read_path);

	if (path != MY_RNG_PATH_AUTO)
		return path;
	if (!rng->dma)
		return MY_RNG_PATH_MMIO;
	return count < MY_RNG_ZEROCOPY_MIN ? MY_RNG_PATH_BOUNCE :
					     MY_RNG_PATH_ZEROCOPY;
}

static ssize_t my_rng_read(struct file *file, char __user *buf, size_t count,
			   loff_t *ppos)
{
	struct my_rng *rng = file->private_data;

	if (!count)
		return 0;
	switch (my_rng_path(rng, count)) {
	case MY_RNG_PATH_BOUNCE:
		return my_rng_read_bounce(rng, buf,
					  min_t(size_t, count, MY_RNG_DMA_READ_MAX));
	case MY_RNG_PATH_ZEROCOPY:
		return my_rng_read_zerocopy(rng, buf,
					    min_t(size_t, count, MY_RNG_DMA_READ_MAX));
	default:
		return my_rng_read_mmio(rng, buf, count);
	}
}

/* One operation done under the device lock by my_rng_locked(). */
enum my_rng_op {
	MY_RNG_OP_RAND,		/* *val = next 32-bit value */
	MY_RNG_OP_RAND64,	/* *val = next 64-bit value */
	MY_RNG_OP_SEED,		/* reseed with *val */
	MY_RNG_OP_SET_ALGO,	/* select algorithm *val: -EINVAL if unknown */
	MY_RNG_OP_GET_ALGO,	/* *val = current algorithm */
};

/*
 * Runs one operation with the device locked, or returns -ERESTARTSYS /
 * -ENODEV without touching the device.
 */
static int my_rng_locked(struct my_rng *rng, enum my_rng_op op, u64 *val)
{
	int ret = my_rng_lock_bound(rng);
	u32 val32;

	if (ret)
		return ret;
	switch (op) {
	case MY_RNG_OP_RAND:
		ret = my_rng_rand(rng, &val32);
		*val = val32;
		break;
	case MY_RNG_OP_RAND64:
		ret = my_rng_rand64(rng, val);
		break;
	case MY_RNG_OP_SEED:
		writel(*val, rng->base + MY_RNG_REG_SEED);
		my_rng_stash_drop(rng);
		break;
	case MY_RNG_OP_SET_ALGO:
		/* An unknown id changes nothing: the sequence goes on. */
		if (my_rng_algo_valid(rng, *val)) {
			writel(*val, rng->base + MY_RNG_REG_ALGO);
			my_rng_stash_drop(rng);
		} else {
			ret = -EINVAL;
		}
		break;
	case MY_RNG_OP_GET_ALGO:
		*val = my_rng_cur_algo(rng);
		break;
	}
	mutex_unlock(&rng->lock);
	return ret;
}

static long my_rng_ioctl_info(struct my_rng *rng,
			      struct my_rng_info __user *uinfo)
{
	struct my_rng_info info = {
		.id = rng->id,
		.features = rng->features,
		.algos = rng->algos,
	};
	u64 algo;
	int ret;

	ret = my_rng_locked(rng, MY_RNG_OP_GET_ALGO, &algo);
	if (ret)
		return ret;
	info.algo = algo;
	if (copy_to_user(uinfo, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

/*
 * Seeds, then reads req.count values without letting any other user of the
 * device in between. The values are collected in a kernel buffer so that
 * no page fault is taken with the device locked.
 */
static long my_rng_ioctl_seed_read(struct my_rng *rng,
				   struct my_rng_seed_read __user *ureq)
{
	struct my_rng_seed_read req;
	u32 *vals;
	long ret = 0;

	if (copy_from_user(&req, ureq, sizeof(req)))
		return -EFAULT;
	if (!req.count || req.count > MY_RNG_SEED_READ_MAX)
		return -EINVAL;

	vals = kvmalloc_array(req.count, sizeof(*vals), GFP_KERNEL);
	if (!vals)
		return -ENOMEM;

	ret = my_rng_lock_bound(rng);
	if (ret)
		goto out_free;
	ret = my_rng_seed_read_locked(rng, req.seed, vals, req.count);
	mutex_unlock(&rng->lock);

	if (!ret && copy_to_user(u64_to_user_ptr(req.buf), vals,
				 req.count * sizeof(*vals)))
		ret = -EFAULT;
out_free:
	kvfree(vals);
	return ret;
}

static long my_rng_ioctl(struct file *file, unsigned int cmd,
			 unsigned long arg)
{
	struct my_rng *rng = file->private_data;
	void __user *argp = (void __user *)arg;
	u64 val;
	int ret;

	switch (cmd) {
	case MY_RNG_IOCTL_RAND:
		ret = my_rng_locked(rng, MY_RNG_OP_RAND, &val);
		return ret ? ret : put_user((u32)val, (u32 __user *)argp);
	case MY_RNG_IOCTL_SEED:
		if (get_user(val, (u32 __user *)argp))
			return -EFAULT;
		return my_rng_locked(rng, MY_RNG_OP_SEED, &val);
	case MY_RNG_IOCTL_RAND64:
		ret = my_rng_locked(rng, MY_RNG_OP_RAND64, &val);
		return ret ? ret : put_user(val, (u64 __user *)argp);
	case MY_RNG_IOCTL_SET_ALGO:
		if (get_user(val, (u32 __user *)argp))
			return -EFAULT;
		return my_rng_locked(rng, MY_RNG_OP_SET_ALGO, &val);
	case MY_RNG_IOCTL_GET_ALGO:
		ret = my_rng_locked(rng, MY_RNG_OP_GET_ALGO, &val);
		return ret ? ret : put_user((u32)val, (u32 __user *)argp);
	case MY_RNG_IOCTL_INFO:
		return my_rng_ioctl_info(rng, argp);
	case MY_RNG_IOCTL_SEED_READ:
		return my_rng_ioctl_seed_read(rng, argp);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations my_rng_fops = {
	.owner		= THIS_MODULE,
	.open		= my_rng_open,
	.release	= my_rng_release,
	.read		= my_rng_read,
	.unlocked_ioctl	= my_rng_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

/*
 * hw_random pool (DMA devices): takes up to @max bytes, never sleeps, and
 * queues a refill as soon as a half is empty, ahead of demand.
 */
static int my_rng_pool_take(struct my_rng *rng, u8 *data, size_t max)
{
	size_t done = 0;

	spin_lock(&rng->pool_lock);
	if (rng->pool_dead) {
		spin_unlock(&rng->pool_lock);
		return -ENODEV;
	}
	while (done < max) {
		size_t len;
		u8 *src;

		/* An unready half has pool_pos 0: try the other one. */
		if (!(rng->pool_ready & BIT(rng->pool_cur))) {
			rng->pool_cur ^= 1;
			if (!(rng->pool_ready & BIT(rng->pool_cur)))
				break;
		}
		src = rng->pool + rng->pool_cur * MY_RNG_POOL_HALF + rng->pool_pos;
		len = min_t(size_t, max - done, MY_RNG_POOL_HALF - rng->pool_pos);
		memcpy(data + done, src, len);
		/* Entropy is handed out once. */
		memzero_explicit(src, len);
		done += len;
		rng->pool_pos += len;
		if (rng->pool_pos == MY_RNG_POOL_HALF) {
			WRITE_ONCE(rng->pool_ready,
				   rng->pool_ready & ~BIT(rng->pool_cur));
			rng->pool_pos = 0;
		}
	}
	/*
	 * Queued under pool_lock: my_rng_pool_kill() takes it before
	 * cancel_work_sync(), so no refill is queued after that.
	 */
	if (rng->pool_ready != MY_RNG_POOL_ALL)
		schedule_work(&rng->pool_work);
	spin_unlock(&rng->pool_lock);
	return done;
}

/* Fills the empty halves of the pool with host entropy; sleeps. */
static void my_rng_pool_refill(struct my_rng *rng)
{
	unsigned int todo, filled = 0, half;
	u32 bytes;

	spin_lock(&rng->pool_lock);
	todo = ~rng->pool_ready & MY_RNG_POOL_ALL;
	spin_unlock(&rng->pool_lock);
	if (!todo)
		return;

	/* Only this function fills halves: they stay empty meanwhile. */
	mutex_lock(&rng->lock);
	for (half = 0; half < MY_RNG_POOL_HALVES && rng->base; half++) {
		if (!(todo & BIT(half)))
			continue;
		my_rng_dma_set_seg(rng, 0, rng->pool_dma + half * MY_RNG_POOL_HALF,
				   MY_RNG_POOL_HALF);
		if (!my_rng_dma_run(rng, MY_RNG_DMA_CMD_FILL_HOST, 1, false, &bytes))
			filled |= BIT(half);
	}
	mutex_unlock(&rng->lock);

	spin_lock(&rng->pool_lock);
	WRITE_ONCE(rng->pool_ready, rng->pool_ready | filled);
	spin_unlock(&rng->pool_lock);
	wake_up_interruptible_all(&rng->pool_wait);
}

static void my_rng_pool_work(struct work_struct *work)
{
	my_rng_pool_refill(container_of(work, struct my_rng, pool_work));
}

/* With @wait, an empty pool waits for the refill that take() queued. */
static int my_rng_pool_read(struct my_rng *rng, void *data, size_t max,
			    bool wait)
{
	long ret = my_rng_pool_take(rng, data, max);

	if (ret || !wait)
		return ret;
	ret = wait_event_interruptible_timeout(rng->pool_wait,
					       READ_ONCE(rng->pool_ready) ||
					       READ_ONCE(rng->pool_dead),
					       MY_RNG_DMA_TIMEOUT);
	if (ret < 0)
		return ret;
	return my_rng_pool_take(rng, data, max);
}

/* No more entropy from the pool, and no refill queued from now on. */
static void my_rng_pool_kill(struct my_rng *rng)
{
	spin_lock(&rng->pool_lock);
	WRITE_ONCE(rng->pool_dead, true);
	spin_unlock(&rng->pool_lock);
	wake_up_interruptible_all(&rng->pool_wait);
}

/*
 * hw_random: reads host entropy only (the ENTROPY register, or the pool
 * filled by FILL_HOST), so that it never consumes values of the seeded
 * sequence that the users of the character device see.
 */
static int my_rng_hwrng_read(struct hwrng *hwrng, void *data, size_t max,
			     bool wait)
{
	struct my_rng *rng = container_of(hwrng, struct my_rng, hwrng);
	size_t done = 0;
	int ret;

	if (rng->dma)
		return my_rng_pool_read(rng, data, max, wait);

	if (wait) {
		ret = my_rng_lock_bound(rng);
		if (ret)
			return ret;
	} else {
		/* The device is busy with a user: no data right now. */
		if (!mutex_trylock(&rng->lock))
			return 0;
		if (!rng->base) {
			mutex_unlock(&rng->lock);
			return -ENODEV;
		}
	}
	while (done < max) {
		u32 val = readl(rng->base + MY_RNG_REG_ENTROPY);
		size_t len = min_t(size_t, max - done, sizeof(val));

		memcpy(data + done, &val, len);
		done += len;
	}
	mutex_unlock(&rng->lock);

	return done;
}

/*
 * sysfs: read_path and ioctl_path of the character device.
 */

static struct my_rng *my_rng_from_misc_dev(struct device *dev)
{
	struct miscdevice *misc = dev_get_drvdata(dev);

	return container_of(misc, struct my_rng, misc);
}

static ssize_t read_path_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	struct my_rng *rng = my_rng_from_misc_dev(dev);

	return sysfs_emit(buf, "%s\n",
			  my_rng_path_names[READ_ONCE(rng->read_path)]);
}

static ssize_t read_path_store(struct device *dev,
			       struct device_attribute *attr, const char *buf,
			       size_t count)
{
	struct my_rng *rng = my_rng_from_misc_dev(dev);
	int path = sysfs_match_string(my_rng_path_names, buf);

	if (path < 0)
		return path;
	if (!rng->dma && path != MY_RNG_PATH_AUTO && path != MY_RNG_PATH_MMIO)
		return -EINVAL;
	WRITE_ONCE(rng->read_path, path);
	return count;
}
static DEVICE_ATTR_RW(read_path);

static ssize_t ioctl_path_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct my_rng *rng = my_rng_from_misc_dev(dev);

	return sysfs_emit(buf, "%s\n",
			  my_rng_ioctl_path_names[READ_ONCE(rng->ioctl_path)]);
}

/*
 * No lock: each call reads the path once, and a stash left when switching
 * to mmio is still handed out first, so the sequence stays one.
 */
static ssize_t ioctl_path_store(struct device *dev,
				struct device_attribute *attr, const char *buf,
				size_t count)
{
	struct my_rng *rng = my_rng_from_misc_dev(dev);
	int path = sysfs_match_string(my_rng_ioctl_path_names, buf);

	if (path < 0)
		return path;
	if (!rng->dma && path == MY_RNG_IOCTL_STASH)
		return -EINVAL;
	WRITE_ONCE(rng->ioctl_path, path);
	return count;
}
static DEVICE_ATTR_RW(ioctl_path);

static struct attribute *my_rng_attrs[] = {
	&dev_attr_read_path.attr,
	&dev_attr_ioctl_path.attr,
	NULL
};
ATTRIBUTE_GROUPS(my_rng);

/*
 * Probe and remove.
 */

static void my_rng_identify(struct my_rng *rng)
{
	u32 id = readl(rng->base + MY_RNG_REG_ID);

	/* An ABI 1 device has no ID register: it reads as something else. */
	if ((id >> MY_RNG_ID_MAGIC_SHIFT) != MY_RNG_ID_MAGIC)
		return;

	rng->id = id;
	rng->features = readl(rng->base + MY_RNG_REG_FEATURES);
	rng->algos = readl(rng->base + MY_RNG_REG_ALGOS);
}

/*
 * The test the original exercise ran at boot: seed 0x42 twice and print the
 * first five values of each round, in exactly the same format. The lines
 * are printed without a prefix so that they match that format.
 */
static void my_rng_selftest(struct my_rng *rng, struct device *dev)
{
	u32 val[MY_RNG_TEST_ROUNDS][MY_RNG_TEST_NUMBERS];
	bool ok = true;
	int i, j;

	mutex_lock(&rng->lock);
	if (rng->features & MY_RNG_FEATURE_ALGO)
		writel(MY_RNG_ALGO_GLIBC, rng->base + MY_RNG_REG_ALGO);
	for (i = 0; i < MY_RNG_TEST_ROUNDS; i++) {
		writel(MY_RNG_TEST_SEED, rng->base + MY_RNG_REG_SEED);
		for (j = 0; j < MY_RNG_TEST_NUMBERS; j++)
			val[i][j] = readl(rng->base + MY_RNG_REG_RNG);
	}
	/* Leave the generator as after a reset: seeded with 0. */
	writel(0, rng->base + MY_RNG_REG_SEED);
	mutex_unlock(&rng->lock);

	pr_info("%s\n", MY_RNG_TEST_RULE);
	pr_info("BEGIN MY-RNG TEST\n");
	pr_info("%s\n", MY_RNG_TEST_RULE);
	for (i = 0; i < MY_RNG_TEST_ROUNDS; i++) {
		for (j = 0; j < MY_RNG_TEST_NUMBERS; j++) {
			pr_info("Round %d number %d: %u\n", i, j, val[i][j]);
			if (val[i][j] != val[0][j])
				ok = false;
			/* Algorithm 0 (glibc) was selected: known values. */
			if ((rng->features & MY_RNG_FEATURE_ALGO) &&
			    val[i][j] != my_rng_test_expected[j])
				ok = false;
		}
	}
	pr_info("%s\n", MY_RNG_TEST_RULE);
	pr_info("END MY-RNG TEST\n");
	pr_info("%s\n", MY_RNG_TEST_RULE);

	if (ok)
		dev_info(dev, "self-test passed\n");
	else
		dev_err(dev, "self-test failed: unexpected values for seed %#x\n",
			MY_RNG_TEST_SEED);
}

static void my_rng_put_action(void *data)
{
	my_rng_put(data);
}

static void my_rng_free_index(void *data)
{
	struct my_rng *rng = data;

	ida_free(&my_rng_ida, rng->index);
}

/* Enables the device and maps BAR0 at *base. */
static int my_rng_map(struct pci_dev *pdev, void __iomem **base)
{
	struct device *dev = &pdev->dev;
	int ret;

	ret = pcim_enable_device(pdev);
	if (ret)
		return dev_err_probe(dev, ret, "cannot enable device\n");

	if (!(pci_resource_flags(pdev, 0) & IORESOURCE_MEM) ||
	    pci_resource_len(pdev, 0) < MY_RNG_BASE_END)
		return dev_err_probe(dev, -ENODEV, "BAR0 is not MMIO of at least %d bytes\n",
				     MY_RNG_BASE_END);

	/*
	 * Managed request and mapping of BAR0 with interfaces that exist,
	 * undeprecated, in every kernel this driver builds on:
	 * pcim_iomap_regions() is deprecated since 6.11 and its replacement
	 * pcim_iomap_region() does not exist before.
	 */
	if (!devm_request_mem_region(dev, pci_resource_start(pdev, 0),
				     pci_resource_len(pdev, 0), MY_RNG_NAME))
		return dev_err_probe(dev, -EBUSY, "BAR0 is in use\n");
	*base = pcim_iomap(pdev, 0, 0);
	if (!*base)
		return dev_err_probe(dev, -ENOMEM, "cannot map BAR0\n");
	return 0;
}

/*
 * Allocates the state of a device, its index and its names: my_rng_driver
 * and my_rng for the first device, my_rng_driver<n> and my_rng.<n> for the
 * next ones. The names are device-managed: misc_deregister() in remove() and
 * the hwrng's devres action, which runs before them, are their last users.
 */
static struct my_rng *my_rng_alloc(struct device *dev, void __iomem *base)
{
	struct my_rng *rng;
	int ret;

	/* Not devm_kzalloc(): open files may outlive the binding. */
	rng = kzalloc_obj(*rng);
	if (!rng)
		return ERR_PTR(-ENOMEM);
	kref_init(&rng->kref);
	mutex_init(&rng->lock);
	rng->base = base;
	init_completion(&rng->dma_done);
	spin_lock_init(&rng->pool_lock);
	INIT_WORK(&rng->pool_work, my_rng_pool_work);
	init_waitqueue_head(&rng->pool_wait);
	ret = devm_add_action_or_reset(dev, my_rng_put_action, rng);
	if (ret)
		return ERR_PTR(ret);

	ret = ida_alloc(&my_rng_ida, GFP_KERNEL);
	if (ret < 0)
		return ERR_PTR(ret);
	rng->index = ret;
	ret = devm_add_action_or_reset(dev, my_rng_free_index, rng);
	if (ret)
		return ERR_PTR(ret);

	if (rng->index) {
		rng->node_name = devm_kasprintf(dev, GFP_KERNEL, "%s%d",
						MY_RNG_NODE_NAME, rng->index);
		rng->hwrng_name = devm_kasprintf(dev, GFP_KERNEL, "%s.%d",
						 MY_RNG_NAME, rng->index);
	} else {
		rng->node_name = MY_RNG_NODE_NAME;
		rng->hwrng_name = MY_RNG_NAME;
	}
	if (!rng->node_name || !rng->hwrng_name)
		return ERR_PTR(-ENOMEM);
	return rng;
}

static irqreturn_t my_rng_irq(int irq, void *data)
{
	struct my_rng *rng = data;
	u32 status;

	/*
	 * An MSI is ours alone and sent once per command's end: acknowledge
	 * it without reading IRQ_STATUS first (a register round trip saved;
	 * the waiter reads DMA_STATUS anyway).
	 */
	if (rng->msi) {
		writel(MY_RNG_IRQ_DMA_DONE, rng->regs + MY_RNG_REG_IRQ_STATUS);
		complete(&rng->dma_done);
		return IRQ_HANDLED;
	}
	status = readl(rng->regs + MY_RNG_REG_IRQ_STATUS);
	/* INTx may be shared. */
	if (!(status & MY_RNG_IRQ_DMA_DONE))
		return IRQ_NONE;
	writel(status, rng->regs + MY_RNG_REG_IRQ_STATUS);
	complete(&rng->dma_done);
	return IRQ_HANDLED;
}

/*
 * Runs at remove(), once no command can start any more, or from devres after
 * a failed probe; in both cases before the interrupt and the DMA buffers are
 * freed: no more refills, the engine stopped (a no-op unless a command runs),
 * no more interrupts.
 */
static void my_rng_dma_stop(void *data)
{
	struct my_rng *rng = data;

	my_rng_pool_kill(rng);
	cancel_work_sync(&rng->pool_work);
	writel(MY_RNG_DMA_CMD_ABORT, rng->regs + MY_RNG_REG_DMA_CMD);
	writel(0, rng->regs + MY_RNG_REG_IRQ_ENABLE);
}

/* Allocates the segment list, the bounce buffer, the hw_random pool, the stash. */
static int my_rng_dma_alloc(struct my_rng *rng)
{
	rng->segs = dmam_alloc_coherent(rng->dev,
					rng->max_segs * sizeof(*rng->segs),
					&rng->segs_dma, GFP_KERNEL);
	rng->bounce = dmam_alloc_coherent(rng->dev, MY_RNG_BOUNCE_SIZE,
					  &rng->bounce_dma, GFP_KERNEL);
	rng->pool = dmam_alloc_coherent(rng->dev,
					MY_RNG_POOL_HALVES * MY_RNG_POOL_HALF,
					&rng->pool_dma, GFP_KERNEL);
	rng->stash = dmam_alloc_coherent(rng->dev, MY_RNG_STASH_MAX,
					 &rng->stash_dma, GFP_KERNEL);
	if (!rng->segs || !rng->bounce || !rng->pool || !rng->stash)
		return -ENOMEM;
	my_rng_stash_drop(rng);
	return 0;
}

/*
 * DMA engine and its interrupt (ABI 2.1). On failure the device is used
 * without DMA, as an ABI 2.0 one; what was set up stays until unbinding.
 */
static int my_rng_setup_dma(struct pci_dev *pdev, struct my_rng *rng)
{
	unsigned long irqflags = 0;
	int ret;

	rng->dev = &pdev->dev;
	if (pci_resource_len(pdev, 0) < MY_RNG_IRQ_END)
		return -ENODEV;
	/* A bounce or pool command is one segment of up to 16 KiB. */
	rng->max_segs = min(readl(rng->base + MY_RNG_REG_DMA_MAX_SEGS),
			    MY_RNG_DMA_SEGS_LIMIT);
	rng->max_bytes = readl(rng->base + MY_RNG_REG_DMA_MAX_BYTES);
	if (rng->max_segs < 2 || rng->max_bytes < MY_RNG_BOUNCE_SIZE)
		return -EINVAL;

	ret = dma_set_mask_and_coherent(rng->dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	ret = my_rng_dma_alloc(rng);
	if (ret)
		return ret;

	ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI | PCI_IRQ_INTX);
	if (ret < 0)
		return ret;
	rng->msi = pdev->msi_enabled;
	if (!rng->msi)
		irqflags = IRQF_SHARED;
	rng->regs = rng->base;
	ret = devm_request_irq(rng->dev, pci_irq_vector(pdev, 0), my_rng_irq,
			       irqflags, rng->node_name, rng);
	if (ret)
		return ret;
	ret = devm_add_action_or_reset(rng->dev, my_rng_dma_stop, rng);
	if (ret)
		return ret;

	pci_set_master(pdev);
	/* A cause left pending by an earlier driver must not fire now. */
	writel(MY_RNG_IRQ_DMA_DONE, rng->base + MY_RNG_REG_IRQ_STATUS);
	writel(MY_RNG_IRQ_DMA_DONE, rng->base + MY_RNG_REG_IRQ_ENABLE);
	rng->dma = true;
	return 0;
}

/* Maps the device, allocates its state and reads its identity. */
static struct my_rng *my_rng_map_and_identify(struct pci_dev *pdev)
{
	void __iomem *base;
	struct my_rng *rng;
	int ret;

	ret = my_rng_map(pdev, &base);
	if (ret)
		return ERR_PTR(ret);
	rng = my_rng_alloc(&pdev->dev, base);
	if (IS_ERR(rng))
		return rng;
	my_rng_identify(rng);

	if ((rng->features & MY_RNG_FEATURE_DMA) &&
	    (rng->features & MY_RNG_FEATURE_IRQ)) {
		ret = my_rng_setup_dma(pdev, rng);
		if (ret)
			dev_warn(&pdev->dev, "DMA not used (%pe)\n", ERR_PTR(ret));
	}
	return rng;
}

/*
 * Only the ENTROPY register can feed hw_random: reading RNG would consume
 * values of the sequence a user seeded. An ABI 1 device has nothing else,
 * so it gets no hw_random source.
 */
static int my_rng_register_hwrng(struct my_rng *rng, struct device *dev)
{
	int ret;

	if (!(rng->features & MY_RNG_FEATURE_ENTROPY))
		return 0;
	/* Filled before the core's first read, which may not wait. */
	if (rng->dma)
		my_rng_pool_refill(rng);
	rng->hwrng.name = rng->hwrng_name;
	rng->hwrng.read = my_rng_hwrng_read;
	rng->hwrng.quality = MY_RNG_HWRNG_QUALITY;
	ret = devm_hwrng_register(dev, &rng->hwrng);
	if (ret)
		return dev_err_probe(dev, ret, "cannot register hwrng\n");
	return 0;
}

/*
 * Mode 0600: the generator state is shared by every user of the device, so
 * seeding it, or reading from it, lets one user predict or disturb what
 * another one gets; leave wider access to a udev rule.
 */
static int my_rng_register_misc(struct my_rng *rng, struct device *dev)
{
	int ret;

	rng->misc.minor = MISC_DYNAMIC_MINOR;
	rng->misc.name = rng->node_name;
	rng->misc.fops = &my_rng_fops;
	rng->misc.parent = dev;
	rng->misc.mode = 0600;
	rng->misc.groups = my_rng_groups;
	ret = misc_register(&rng->misc);
	if (ret)
		return dev_err_probe(dev, ret, "cannot register /dev/%s\n",
				     rng->node_name);

	if (rng->id)
		dev_info(dev, "/dev/%s: ABI %u.%u, features %#x, algorithms %#x, hwrng %s\n",
			 rng->node_name, MY_RNG_ID_MAJOR(rng->id),
			 MY_RNG_ID_MINOR(rng->id), rng->features, rng->algos,
			 rng->hwrng.name ? rng->hwrng.name : "none");
	else
		dev_info(dev, "/dev/%s: ABI 1 (RNG and SEED only), algorithm 0, no hwrng\n",
			 rng->node_name);
	if (rng->dma)
		dev_info(dev, "/dev/%s: DMA, %u segments and %u bytes per command, %s interrupt\n",
			 rng->node_name, rng->max_segs, rng->max_bytes,
			 to_pci_dev(dev)->msi_enabled ? "MSI" : "INTx");
	return 0;
}

static int my_rng_probe(struct pci_dev *pdev, const struct pci_device_id *ent)
{
	struct my_rng *rng;
	int ret;

	rng = my_rng_map_and_identify(pdev);
	if (IS_ERR(rng))
		return PTR_ERR(rng);
	if (selftest)
		my_rng_selftest(rng, &pdev->dev);
	ret = my_rng_register_hwrng(rng, &pdev->dev);
	if (ret)
		return ret;
	/* remove() finds the state here once the node exists. */
	pci_set_drvdata(pdev, rng);
	return my_rng_register_misc(rng, &pdev->dev);
}

static void my_rng_remove(struct pci_dev *pdev)
{
	struct my_rng *rng = pci_get_drvdata(pdev);

	/* No open() is running or can start after this. */
	misc_deregister(&rng->misc);

	/* Files still open get -ENODEV from now on. */
	mutex_lock(&rng->lock);
	rng->base = NULL;
	mutex_unlock(&rng->lock);

	/* No command runs (they run under the lock): stop the engine. */
	if (rng->dma)
		devm_release_action(&pdev->dev, my_rng_dma_stop, rng);

	/*
	 * devres now unregisters the hwrng, frees the interrupt and the DMA
	 * buffers, frees the index, drops the device's reference and unmaps
	 * and releases BAR0.
	 */
}

static const struct pci_device_id my_rng_pci_ids[] = {
	{ PCI_DEVICE(MY_RNG_PCI_VENDOR_ID, MY_RNG_PCI_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, my_rng_pci_ids);

static struct pci_driver my_rng_pci_driver = {
	.name		= MY_RNG_NAME,
	.id_table	= my_rng_pci_ids,
	.probe		= my_rng_probe,
	.remove		= my_rng_remove,
};
module_pci_driver(my_rng_pci_driver);

MODULE_DESCRIPTION("Driver for the my-rng emulated PCI random number generator");
MODULE_LICENSE("GPL");
