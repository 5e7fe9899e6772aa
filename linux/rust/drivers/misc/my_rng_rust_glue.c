// SPDX-License-Identifier: GPL-2.0
/*
 * C side of the Rust my-rng driver (my_rng_rust_main.rs): what the Rust
 * abstractions of this kernel do not offer yet. hw_random has no Rust
 * abstraction and <linux/hw_random.h> is not in the Rust bindings, so the
 * hwrng is allocated, registered and unregistered here and its read()
 * calls back into Rust. The Rust miscdevice abstraction registers its node
 * without a parent, so the "device" link that user space uses to find the
 * PCI function of a node is added here.
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

/* /sys/class/misc/<node>/device -> the PCI function, as for a C misc driver. */
int my_rng_rust_link_parent(struct miscdevice *misc, struct pci_dev *pdev)
{
	return sysfs_create_link(&misc->this_device->kobj, &pdev->dev.kobj,
				 "device");
}

void my_rng_rust_unlink_parent(struct miscdevice *misc)
{
	sysfs_remove_link(&misc->this_device->kobj, "device");
}

/*
 * One line of the self-test block, without the "module: " prefix the Rust
 * print macros add: the block has the exact format of the original exercise.
 */
void my_rng_rust_info_line(const char *line)
{
	pr_info("%s\n", line);
}
