// SPDX-License-Identifier: GPL-2.0
/*
 * C side of the Rust my-rng driver (my_rng_rust_main.rs): what the Rust
 * abstractions of this kernel do not offer yet. hw_random has no Rust
 * abstraction and <linux/hw_random.h> is not in the Rust bindings, so the
 * hwrng is allocated, registered and unregistered here and its read()
 * calls back into Rust. The Rust miscdevice abstraction registers its node
 * without a parent and without attributes, so the "device" link that user
 * space uses to find the PCI function of a node, and the node's read_path
 * attribute, are added here.
 */

#include <linux/device.h>
#include <linux/hw_random.h>
#include <linux/miscdevice.h>
#include <linux/pci.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

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
 * read() paths the read_path attribute accepts: this driver reads through
 * registers only, so it accepts the values the C driver accepts on a device
 * without DMA ("bounce" and "zerocopy" are refused with -EINVAL).
 */
static const char * const my_rng_rust_paths[] = { "auto", "mmio" };

/**
 * struct my_rng_rust_node - what the glue adds to a misc node in sysfs
 * @read_path: the read_path attribute
 * @path:      its value, an index into my_rng_rust_paths
 */
struct my_rng_rust_node {
	struct device_attribute read_path;
	int path;
};

static ssize_t my_rng_rust_path_show(struct device *dev,
				     struct device_attribute *attr, char *buf)
{
	struct my_rng_rust_node *node =
		container_of(attr, struct my_rng_rust_node, read_path);

	return sysfs_emit(buf, "%s\n", my_rng_rust_paths[READ_ONCE(node->path)]);
}

static ssize_t my_rng_rust_path_store(struct device *dev,
				      struct device_attribute *attr,
				      const char *buf, size_t count)
{
	struct my_rng_rust_node *node =
		container_of(attr, struct my_rng_rust_node, read_path);
	int path = sysfs_match_string(my_rng_rust_paths, buf);

	if (path < 0)
		return path;
	WRITE_ONCE(node->path, path);
	return count;
}

/*
 * /sys/class/misc/<node>/device -> the PCI function, as for a C misc driver,
 * and /sys/class/misc/<node>/read_path. Stores what to tear down in *@out.
 */
int my_rng_rust_node_setup(struct miscdevice *misc, struct pci_dev *pdev,
			   struct my_rng_rust_node **out)
{
	struct my_rng_rust_node *node = kzalloc(sizeof(*node), GFP_KERNEL);
	int ret;

	if (!node)
		return -ENOMEM;
	sysfs_attr_init(&node->read_path.attr);
	node->read_path.attr.name = "read_path";
	node->read_path.attr.mode = 0644;
	node->read_path.show = my_rng_rust_path_show;
	node->read_path.store = my_rng_rust_path_store;

	ret = sysfs_create_link(&misc->this_device->kobj, &pdev->dev.kobj,
				"device");
	if (ret)
		goto err_free;
	ret = device_create_file(misc->this_device, &node->read_path);
	if (ret)
		goto err_link;
	*out = node;
	return 0;

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
