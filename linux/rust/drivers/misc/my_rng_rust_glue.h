/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Interface between the Rust my-rng driver (my_rng_rust_main.rs, which
 * declares the same functions) and its C glue (my_rng_rust_glue.c).
 */
#ifndef _MY_RNG_RUST_GLUE_H
#define _MY_RNG_RUST_GLUE_H

#include <linux/types.h>

struct hwrng;
struct miscdevice;
struct my_rng_rust_node;
struct pci_dev;

/* Defined in Rust: reads host entropy of the device whose state is @priv. */
int my_rng_rust_hwrng_read(const void *priv, void *data, size_t max, bool wait);

int my_rng_rust_hwrng_register(const char *name, const void *priv,
			       unsigned short quality, struct hwrng **out);
void my_rng_rust_hwrng_unregister(struct hwrng *rng);
int my_rng_rust_node_setup(struct miscdevice *misc, struct pci_dev *pdev,
			   struct my_rng_rust_node **out);
void my_rng_rust_node_teardown(struct miscdevice *misc,
			       struct my_rng_rust_node *node);
void my_rng_rust_info_line(const char *line);

#endif /* _MY_RNG_RUST_GLUE_H */
