// SPDX-License-Identifier: GPL-2.0
/*
 * C side of the Rust my-rng driver (my_rng_rust_main.rs): what the Rust
 * abstractions of this kernel do not offer yet. hw_random has no Rust
 * abstraction and <linux/hw_random.h> is not in the Rust bindings, so the
 * hwrng is allocated, registered and unregistered here and its read()
 * calls back into Rust. The Rust miscdevice abstraction registers its node
 * without a parent and without attributes, so the "device" link that user
 * space uses to find the PCI function of a node, and the node's read_path
 * and ioctl_path attributes, are added here. There is no Rust abstraction to
 * pin the pages of an iov_iter either (the SGTable abstraction only maps
 * pages it owns): the zero-copy read() pins, maps and writes them here. And
 * the Rust I/O abstraction has no repeated read of one register (readsq()).
 */

#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/hw_random.h>
#include <linux/io.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/printk.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/uio.h>

#include "my_rng_rust_glue.h"

static int my_rng_rust_hwrng_cb(struct hwrng *rng, void *data, size_t max,
				bool wait)
{
	return my_rng_rust_hwrng_read((const void *)rng->priv, data, max, wait);
}

/*
 * Registers a hwrng named @name (which must outlive it) whose reads go to
 * my_rng_rust_hwrng_read(@priv, ...) and stores it in *@out.
 */
int my_rng_rust_hwrng_register(const char *name, const void *priv,
			       unsigned short quality, struct hwrng **out)
{
	struct hwrng *rng = kzalloc(sizeof(*rng), GFP_KERNEL);
	int ret;

	if (!rng)
		return -ENOMEM;
	rng->name = name;
	rng->read = my_rng_rust_hwrng_cb;
	rng->quality = quality;
	rng->priv = (unsigned long)priv;
	ret = hwrng_register(rng);
	if (ret) {
		kfree(rng);
		return ret;
	}
	*out = rng;
	return 0;
}

/* Unregisters @rng; no read() runs or starts once this returns. */
void my_rng_rust_hwrng_unregister(struct hwrng *rng)
{
	hwrng_unregister(rng);
	kfree(rng);
}

/*
 * The node's attributes and the names of their values, in the order of the
 * Rust enums (ReadPath, IoctlPath); Rust decides which values apply.
 */
enum {
	MY_RNG_RUST_ATTR_READ_PATH,
	MY_RNG_RUST_ATTR_IOCTL_PATH,
};

static const char * const my_rng_rust_read_paths[] = {
	"auto", "mmio", "bounce", "zerocopy",
};

static const char * const my_rng_rust_ioctl_paths[] = {
	"auto", "mmio", "stash",
};

/**
 * struct my_rng_rust_node - what the glue adds to a misc node in sysfs
 * @read_path:  the read_path attribute
 * @ioctl_path: the ioctl_path attribute
 * @priv:       the device's Rust state, for my_rng_rust_attr_get/set()
 */
struct my_rng_rust_node {
	struct device_attribute read_path;
	struct device_attribute ioctl_path;
	const void *priv;
};

static ssize_t my_rng_rust_attr_show(const void *priv, unsigned int attr,
				     const char * const *names, size_t n,
				     char *buf)
{
	unsigned int idx = my_rng_rust_attr_get(priv, attr);

	if (idx >= n)
		return -EIO;
	return sysfs_emit(buf, "%s\n", names[idx]);
}

static ssize_t my_rng_rust_attr_store(const void *priv, unsigned int attr,
				      const char * const *names, size_t n,
				      const char *buf, size_t count)
{
	int idx = __sysfs_match_string(names, n, buf);
	int ret;

	if (idx < 0)
		return idx;
	ret = my_rng_rust_attr_set(priv, attr, idx);
	return ret ? ret : count;
}

static ssize_t my_rng_rust_read_path_show(struct device *dev,
					  struct device_attribute *attr,
					  char *buf)
{
	struct my_rng_rust_node *node =
		container_of(attr, struct my_rng_rust_node, read_path);

	return my_rng_rust_attr_show(node->priv, MY_RNG_RUST_ATTR_READ_PATH,
				     my_rng_rust_read_paths,
				     ARRAY_SIZE(my_rng_rust_read_paths), buf);
}

static ssize_t my_rng_rust_read_path_store(struct device *dev,
					   struct device_attribute *attr,
					   const char *buf, size_t count)
{
	struct my_rng_rust_node *node =
		container_of(attr, struct my_rng_rust_node, read_path);

	return my_rng_rust_attr_store(node->priv, MY_RNG_RUST_ATTR_READ_PATH,
				      my_rng_rust_read_paths,
				      ARRAY_SIZE(my_rng_rust_read_paths), buf,
				      count);
}

static ssize_t my_rng_rust_ioctl_path_show(struct device *dev,
					   struct device_attribute *attr,
					   char *buf)
{
	struct my_rng_rust_node *node =
		container_of(attr, struct my_rng_rust_node, ioctl_path);

	return my_rng_rust_attr_show(node->priv, MY_RNG_RUST_ATTR_IOCTL_PATH,
				     my_rng_rust_ioctl_paths,
				     ARRAY_SIZE(my_rng_rust_ioctl_paths), buf);
}

static ssize_t my_rng_rust_ioctl_path_store(struct device *dev,
					    struct device_attribute *attr,
					    const char *buf, size_t count)
{
	struct my_rng_rust_node *node =
		container_of(attr, struct my_rng_rust_node, ioctl_path);

	return my_rng_rust_attr_store(node->priv, MY_RNG_RUST_ATTR_IOCTL_PATH,
				      my_rng_rust_ioctl_paths,
				      ARRAY_SIZE(my_rng_rust_ioctl_paths), buf,
				      count);
}

static void my_rng_rust_attr_init(struct device_attribute *a, const char *name,
				  ssize_t (*show)(struct device *,
						  struct device_attribute *,
						  char *),
				  ssize_t (*store)(struct device *,
						   struct device_attribute *,
						   const char *, size_t))
{
	sysfs_attr_init(&a->attr);
	a->attr.name = name;
	a->attr.mode = 0644;
	a->show = show;
	a->store = store;
}

/*
 * /sys/class/misc/<node>/device -> the PCI function, as for a C misc driver,
 * and /sys/class/misc/<node>/{read,ioctl}_path, whose values @priv holds (it
 * must outlive the node's teardown). Stores what to tear down in *@out.
 */
int my_rng_rust_node_setup(struct miscdevice *misc, struct pci_dev *pdev,
			   const void *priv, struct my_rng_rust_node **out)
{
	struct my_rng_rust_node *node = kzalloc(sizeof(*node), GFP_KERNEL);
	int ret;

	if (!node)
		return -ENOMEM;
	my_rng_rust_attr_init(&node->read_path, "read_path",
			      my_rng_rust_read_path_show,
			      my_rng_rust_read_path_store);
	my_rng_rust_attr_init(&node->ioctl_path, "ioctl_path",
			      my_rng_rust_ioctl_path_show,
			      my_rng_rust_ioctl_path_store);
	node->priv = priv;

	ret = sysfs_create_link(&misc->this_device->kobj, &pdev->dev.kobj,
				"device");
	if (ret)
		goto err_free;
	ret = device_create_file(misc->this_device, &node->read_path);
	if (ret)
		goto err_link;
	ret = device_create_file(misc->this_device, &node->ioctl_path);
	if (ret)
		goto err_read_path;
	*out = node;
	return 0;

err_read_path:
	device_remove_file(misc->this_device, &node->read_path);
err_link:
	sysfs_remove_link(&misc->this_device->kobj, "device");
err_free:
	kfree(node);
	return ret;
}

/* Undoes my_rng_rust_node_setup(); no show() or store() runs after it. */
void my_rng_rust_node_teardown(struct miscdevice *misc,
			       struct my_rng_rust_node *node)
{
	device_remove_file(misc->this_device, &node->ioctl_path);
	device_remove_file(misc->this_device, &node->read_path);
	sysfs_remove_link(&misc->this_device->kobj, "device");
	kfree(node);
}

/*
 * One line of the self-test block, without the "module: " prefix the Rust
 * print macros add: the block has the exact format of the original exercise.
 */
void my_rng_rust_info_line(const char *line)
{
	pr_info("%s\n", line);
}

/**
 * struct my_rng_rust_pinned - the caller's pages of a zero-copy read()
 * @sgt:    the pages as a scatterlist, DMA-mapped while @mapped
 * @pages:  the pages, as iov_iter_extract_pages() listed them
 * @npages: number of entries in @pages
 * @len:    bytes extracted from the iterator
 * @pinned: the pages are pinned (user memory) and must be unpinned
 * @mapped: @sgt is mapped for @dev
 * @dev:    the device @sgt is mapped for
 */
struct my_rng_rust_pinned {
	struct sg_table sgt;
	struct page **pages;
	unsigned int npages;
	size_t len;
	bool pinned;
	bool mapped;
	struct device *dev;
};

/*
 * Takes up to @max bytes of @iter's destination (advancing @iter by as much),
 * pinned if it is user memory: pinning may fault pages in, so the caller
 * holds no lock. Returns the byte count, or -EFAULT if nothing could be
 * pinned. A short count is a leading part of the buffer.
 */
ssize_t my_rng_rust_pin(struct iov_iter *iter, size_t max,
			struct my_rng_rust_pinned **out)
{
	struct my_rng_rust_pinned *p = kzalloc(sizeof(*p), GFP_KERNEL);
	size_t offset;
	ssize_t len;
	int ret;

	if (!p)
		return -ENOMEM;
	p->pinned = iov_iter_extract_will_pin(iter);
	len = iov_iter_extract_pages(iter, &p->pages, max, UINT_MAX, 0, &offset);
	if (len <= 0) {
		kfree(p);
		return len ? len : -EFAULT;
	}
	p->len = len;
	p->npages = DIV_ROUND_UP(offset + len, PAGE_SIZE);
	ret = sg_alloc_table_from_pages(&p->sgt, p->pages, p->npages, offset,
					len, GFP_KERNEL);
	if (ret) {
		my_rng_rust_unpin(iter, p, 0);
		return ret;
	}
	*out = p;
	return len;
}

/* Maps @p for @pdev (DMA from the device); the device must be bound. */
struct sg_table *my_rng_rust_map(struct pci_dev *pdev,
				 struct my_rng_rust_pinned *p)
{
	int ret = dma_map_sgtable(&pdev->dev, &p->sgt, DMA_FROM_DEVICE, 0);

	if (ret)
		return ERR_PTR(ret);
	p->dev = &pdev->dev;
	p->mapped = true;
	return &p->sgt;
}

/* Unmaps @p if it is mapped: the device has stopped writing it. */
void my_rng_rust_unmap(struct my_rng_rust_pinned *p)
{
	if (p->mapped)
		dma_unmap_sgtable(p->dev, &p->sgt, DMA_FROM_DEVICE, 0);
	p->mapped = false;
}

/*
 * Copies @len bytes from @src into @p's pages from byte @off on; @p is not
 * mapped (an unmap could otherwise write over the copy). -EINVAL if that is
 * beyond what was pinned.
 */
int my_rng_rust_pinned_write(struct my_rng_rust_pinned *p, size_t off,
			     const void *src, size_t len)
{
	if (!len)
		return 0;
	if (p->mapped || off > p->len || len > p->len - off)
		return -EINVAL;
	if (sg_pcopy_from_buffer(p->sgt.sgl, p->sgt.orig_nents, src, len,
				 off) != len)
		return -EFAULT;
	return 0;
}

/*
 * Releases @p once the device has stopped writing it: unmapped, unpinned
 * (dirty: the device wrote them) and freed; @iter is moved back over the
 * bytes past the first @done, which were not filled.
 */
void my_rng_rust_unpin(struct iov_iter *iter, struct my_rng_rust_pinned *p,
		       size_t done)
{
	my_rng_rust_unmap(p);
	if (p->sgt.sgl)
		sg_free_table(&p->sgt);
	if (p->pinned)
		unpin_user_pages_dirty_lock(p->pages, p->npages, true);
	kvfree(p->pages);
	iov_iter_revert(iter, p->len - min(done, p->len));
	kfree(p);
}

/*
 * Reads the register at @reg @count times into @buf (readsl(), readsq()):
 * the Rust I/O abstraction has no repeated read, and its one-value accessors
 * each call a C helper, which in an emulated guest costs about as much again
 * as the register access itself.
 */
void my_rng_rust_readsl(const void __iomem *reg, u32 *buf, unsigned int count)
{
	readsl(reg, buf, count);
}

void my_rng_rust_readsq(const void __iomem *reg, u64 *buf, unsigned int count)
{
	readsq(reg, buf, count);
}
