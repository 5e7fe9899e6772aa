// SPDX-License-Identifier: GPL-2.0
/*
 * my-rng: driver for the emulated PCI random number generator 1234:cafe.
 *
 * BAR0 holds 32-bit little-endian registers: RNG (next value), SEED (reseed
 * the current algorithm) and, on an ABI 2 device, ID, FEATURES, ALGO, ALGOS,
 * ENTROPY (host entropy that never touches the algorithm state) and the
 * 64-bit RNG64. An ABI 1 device (the original exercise) only has RNG and
 * SEED; it is recognised by the missing magic in the ID register.
 *
 * Each device gets a misc character device, /dev/my_rng_driver for the first
 * one and /dev/my_rng_driver1, 2, ... for the next ones, offering the ioctls
 * of <uapi/misc/my_rng.h> and read() of a byte stream, and, if it has the
 * ENTROPY register, a hw_random source.
 *
 * Locking: a per-device mutex makes every register sequence atomic with
 * respect to the other users of the device (ioctls, read(), hw_random); it
 * also protects @base, which is NULL once the device has been removed.
 *
 * Lifetime: the per-device state is reference counted. The device holds one
 * reference until its managed resources are released, and every open file
 * holds one. remove() unregisters the character device (misc_deregister()
 * waits for a running open(), which is called under the misc lock), then
 * clears @base under the mutex, before devres unmaps the BAR: calls on files
 * that are still open then fail with -ENODEV, and the state is freed by the
 * last close.
 */

#include <linux/bits.h>
#include <linux/build_bug.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/hw_random.h>
#include <linux/idr.h>
#include <linux/io.h>
#include <linux/kernel.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include <uapi/misc/my_rng.h>

#define MY_RNG_NAME		"my_rng"
#define MY_RNG_NODE_NAME	"my_rng_driver"

/* QEMU's vendor id (not in pci_ids.h) and the device id of my-rng. */
#define MY_RNG_PCI_VENDOR_ID	0x1234
#define MY_RNG_PCI_DEVICE_ID	0xcafe

/* Registers (offsets into BAR0). */
#define MY_RNG_REG_RNG		0x000
#define MY_RNG_REG_SEED		0x004
#define MY_RNG_REG_ID		0x008
#define MY_RNG_REG_FEATURES	0x00c
#define MY_RNG_REG_ALGO		0x010
#define MY_RNG_REG_ALGOS	0x014
#define MY_RNG_REG_ENTROPY	0x018
#define MY_RNG_REG_RNG64	0x020
#define MY_RNG_MMIO_SIZE	(MY_RNG_REG_RNG64 + 8)

/* read(): at most this much per call, copied out in chunks of this size. */
#define MY_RNG_READ_MAX		SZ_64K
#define MY_RNG_READ_CHUNK	256

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

/* The ABI is fixed: catch any accidental change of the uapi header. */
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

/**
 * struct my_rng - state of one device
 * @kref:       held by the bound device and by each open file
 * @lock:       serialises register sequences, protects @base
 * @base:       BAR0 mapping; NULL once the device has been removed
 * @misc:       the character device
 * @hwrng:      the hw_random source (ABI 2 devices with ENTROPY only)
 * @index:      0 for the first device, 1 for the next one, ...
 * @id:         ID register (0 on an ABI 1 device)
 * @features:   FEATURES register (0 on an ABI 1 device)
 * @algos:      ALGOS register (0 on an ABI 1 device)
 * @node_name:  name of the character device
 * @hwrng_name: name of the hw_random source
 */
struct my_rng {
	struct kref kref;
	/* Serialises register sequences; protects @base. */
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
 * discarded.
 */
static ssize_t my_rng_read(struct file *file, char __user *buf, size_t count,
			   loff_t *ppos)
{
	struct my_rng *rng = file->private_data;
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
			for (i = 0; i < DIV_ROUND_UP(len, sizeof(__le64)); i++)
				chunk.q[i] = cpu_to_le64(my_rng_next64(rng));
		} else {
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

/* One register operation done under the device lock by my_rng_locked(). */
enum my_rng_op {
	MY_RNG_OP_READ,		/* *val = 32-bit register @reg */
	MY_RNG_OP_WRITE,	/* 32-bit register @reg = *val */
	MY_RNG_OP_RAND64,	/* *val = next 64-bit output */
	MY_RNG_OP_SET_ALGO,	/* select algorithm *val: -EINVAL if unknown */
	MY_RNG_OP_GET_ALGO,	/* *val = current algorithm */
};

/*
 * Runs one operation with the device locked, or returns -ERESTARTSYS /
 * -ENODEV without touching the device.
 */
static int my_rng_locked(struct my_rng *rng, enum my_rng_op op,
			 unsigned int reg, u64 *val)
{
	int ret = my_rng_lock_bound(rng);

	if (ret)
		return ret;
	switch (op) {
	case MY_RNG_OP_READ:
		*val = readl(rng->base + reg);
		break;
	case MY_RNG_OP_WRITE:
		writel(*val, rng->base + reg);
		break;
	case MY_RNG_OP_RAND64:
		*val = my_rng_next64(rng);
		break;
	case MY_RNG_OP_SET_ALGO:
		if (my_rng_algo_valid(rng, *val))
			writel(*val, rng->base + MY_RNG_REG_ALGO);
		else
			ret = -EINVAL;
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

	ret = my_rng_locked(rng, MY_RNG_OP_GET_ALGO, 0, &algo);
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
	u32 i;

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
	writel(req.seed, rng->base + MY_RNG_REG_SEED);
	for (i = 0; i < req.count; i++)
		vals[i] = readl(rng->base + MY_RNG_REG_RNG);
	mutex_unlock(&rng->lock);

	if (copy_to_user(u64_to_user_ptr(req.buf), vals,
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
		ret = my_rng_locked(rng, MY_RNG_OP_READ, MY_RNG_REG_RNG, &val);
		return ret ? ret : put_user((u32)val, (u32 __user *)argp);
	case MY_RNG_IOCTL_SEED:
		if (get_user(val, (u32 __user *)argp))
			return -EFAULT;
		return my_rng_locked(rng, MY_RNG_OP_WRITE, MY_RNG_REG_SEED, &val);
	case MY_RNG_IOCTL_RAND64:
		ret = my_rng_locked(rng, MY_RNG_OP_RAND64, 0, &val);
		return ret ? ret : put_user(val, (u64 __user *)argp);
	case MY_RNG_IOCTL_SET_ALGO:
		if (get_user(val, (u32 __user *)argp))
			return -EFAULT;
		return my_rng_locked(rng, MY_RNG_OP_SET_ALGO, 0, &val);
	case MY_RNG_IOCTL_GET_ALGO:
		ret = my_rng_locked(rng, MY_RNG_OP_GET_ALGO, 0, &val);
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
 * hw_random: reads ENTROPY only, so that it never consumes values of the
 * seeded sequence that the users of the character device see.
 */
static int my_rng_hwrng_read(struct hwrng *hwrng, void *data, size_t max,
			     bool wait)
{
	struct my_rng *rng = container_of(hwrng, struct my_rng, hwrng);
	size_t done = 0;
	int ret;

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
 * Probe and remove.
 */

static void my_rng_identify(struct my_rng *rng)
{
	u32 id = readl(rng->base + MY_RNG_REG_ID);

	/* An ABI 1 device has no ID register: it reads as something else. */
	if ((id >> 16) != MY_RNG_ID_MAGIC)
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
	    pci_resource_len(pdev, 0) < MY_RNG_MMIO_SIZE)
		return dev_err_probe(dev, -ENODEV, "BAR0 is not MMIO of at least %d bytes\n",
				     MY_RNG_MMIO_SIZE);

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
	if (!IS_ERR(rng))
		my_rng_identify(rng);
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

	/*
	 * devres now unregisters the hwrng, frees the index, drops the
	 * device's reference and unmaps and releases BAR0.
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
