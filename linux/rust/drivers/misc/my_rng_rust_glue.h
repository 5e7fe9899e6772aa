/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Interface between the Rust my-rng driver (my_rng_rust_main.rs, which
 * declares the same functions) and its C glue (my_rng_rust_glue.c).
 */
#ifndef _MY_RNG_RUST_GLUE_H
#define _MY_RNG_RUST_GLUE_H

#include <linux/types.h>

struct hwrng;
struct iov_iter;
struct miscdevice;
struct my_rng_rust_node;
struct my_rng_rust_pinned;
struct pci_dev;
struct sg_table;

/* Defined in Rust: reads host entropy of the device whose state is @priv. */
int my_rng_rust_hwrng_read(const void *priv, void *data, size_t max, bool wait);
/*
 * Defined in Rust: the value (index into the attribute's names) of the node
 * attribute @attr of the device whose state is @priv; setting it may refuse
 * a value the device cannot take (-EINVAL).
 */
unsigned int my_rng_rust_attr_get(const void *priv, unsigned int attr);
int my_rng_rust_attr_set(const void *priv, unsigned int attr,
			 unsigned int idx);

int my_rng_rust_hwrng_register(const char *name, const void *priv,
			       unsigned short quality, struct hwrng **out);
void my_rng_rust_hwrng_unregister(struct hwrng *rng);
int my_rng_rust_node_setup(struct miscdevice *misc, struct pci_dev *pdev,
			   const void *priv, struct my_rng_rust_node **out);
void my_rng_rust_node_teardown(struct miscdevice *misc,
			       struct my_rng_rust_node *node);
void my_rng_rust_info_line(const char *line);
ssize_t my_rng_rust_pin(struct iov_iter *iter, size_t max,
			struct my_rng_rust_pinned **out);
struct sg_table *my_rng_rust_map(struct pci_dev *pdev,
				 struct my_rng_rust_pinned *p);
void my_rng_rust_unmap(struct my_rng_rust_pinned *p);
int my_rng_rust_pinned_write(struct my_rng_rust_pinned *p, size_t off,
			     const void *src, size_t len);
void my_rng_rust_unpin(struct iov_iter *iter, struct my_rng_rust_pinned *p,
		       size_t done);
void my_rng_rust_readsl(const void __iomem *reg, u32 *buf, unsigned int count);
void my_rng_rust_readsq(const void __iomem *reg, u64 *buf, unsigned int count);

#endif /* _MY_RNG_RUST_GLUE_H */
