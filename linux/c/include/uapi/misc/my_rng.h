/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * User space interface of the my-rng driver (drivers/misc/my-rng.c), the
 * driver of the emulated PCI random number generator 1234:cafe.
 *
 * Device nodes: /dev/my_rng_driver for the first device, then
 * /dev/my_rng_driver1, /dev/my_rng_driver2, ...
 *
 * ioctl numbers (x86, arm, riscv and every architecture with the generic
 * _IOC layout; the code 'q' is 0x71):
 *
 *   MY_RNG_IOCTL_RAND      0x80047101  read the next 32-bit value
 *   MY_RNG_IOCTL_SEED      0x40047101  seed the current algorithm
 *   MY_RNG_IOCTL_RAND64    0x80087102  read the next 64-bit value
 *   MY_RNG_IOCTL_SET_ALGO  0x40047103  select (and reseed) an algorithm
 *   MY_RNG_IOCTL_GET_ALGO  0x80047103  current algorithm id
 *   MY_RNG_IOCTL_INFO      0x80107104  struct my_rng_info
 *   MY_RNG_IOCTL_SEED_READ 0xc0107105  struct my_rng_seed_read (16 bytes)
 *
 * RAND and SEED are the two ioctls of the original (ABI 1) device and keep
 * their numbers. Errors: EFAULT for a bad user pointer, ENOTTY for an
 * unknown ioctl, EINVAL for an unknown algorithm or a bad SEED_READ count,
 * ENODEV once the device has been removed.
 *
 * The structures only contain naturally aligned fixed-size members and no
 * implicit padding: their layout is the same for 32-bit and 64-bit callers.
 */
#ifndef _UAPI_MISC_MY_RNG_H
#define _UAPI_MISC_MY_RNG_H

#include <linux/const.h>
#include <linux/ioctl.h>
#include <linux/types.h>

/* ID register of an ABI 2 device: magic "MR" in bits 31..16. */
#define MY_RNG_ID_MAGIC			0x4d52
#define MY_RNG_ID_MAJOR(id)		(((id) >> 8) & 0xff)
#define MY_RNG_ID_MINOR(id)		((id) & 0xff)

/* FEATURES register bits (my_rng_info.features). */
#define MY_RNG_FEATURE_RNG64		_BITUL(0)
#define MY_RNG_FEATURE_ALGO		_BITUL(1)
#define MY_RNG_FEATURE_ENTROPY		_BITUL(2)
#define MY_RNG_FEATURE_DMA		_BITUL(3)
#define MY_RNG_FEATURE_IRQ		_BITUL(4)

/* Algorithm ids (bit n of my_rng_info.algos is set if id n is available). */
#define MY_RNG_ALGO_GLIBC		0
#define MY_RNG_ALGO_XOSHIRO256PP	1
#define MY_RNG_ALGO_CHACHA20		2
#define MY_RNG_ALGO_HOST		3

/**
 * struct my_rng_info - result of MY_RNG_IOCTL_INFO
 * @id:       ID register (0 on an ABI 1 device, which has no ID register)
 * @features: FEATURES register (MY_RNG_FEATURE_*; 0 on an ABI 1 device)
 * @algos:    bitmask of the implemented algorithm ids (0 on an ABI 1 device)
 * @algo:     current algorithm id (0 on an ABI 1 device)
 */
struct my_rng_info {
	__u32 id;
	__u32 features;
	__u32 algos;
	__u32 algo;
};

/* Largest count accepted by MY_RNG_IOCTL_SEED_READ. */
#define MY_RNG_SEED_READ_MAX		4096

/**
 * struct my_rng_seed_read - argument of MY_RNG_IOCTL_SEED_READ
 * @seed:  value written to the SEED register
 * @count: number of 32-bit values to read, 1..MY_RNG_SEED_READ_MAX
 * @buf:   user address of an array of @count __u32, as an integer
 *
 * The driver seeds and then reads @count values into @buf without letting
 * any other user of the device in between.
 */
struct my_rng_seed_read {
	__u32 seed;
	__u32 count;
	__u64 buf;
};

#define MY_RNG_IOCTL_MAGIC		'q'

#define MY_RNG_IOCTL_RAND	_IOR(MY_RNG_IOCTL_MAGIC, 1, __u32)
#define MY_RNG_IOCTL_SEED	_IOW(MY_RNG_IOCTL_MAGIC, 1, __u32)
#define MY_RNG_IOCTL_RAND64	_IOR(MY_RNG_IOCTL_MAGIC, 2, __u64)
#define MY_RNG_IOCTL_SET_ALGO	_IOW(MY_RNG_IOCTL_MAGIC, 3, __u32)
#define MY_RNG_IOCTL_GET_ALGO	_IOR(MY_RNG_IOCTL_MAGIC, 3, __u32)
#define MY_RNG_IOCTL_INFO	_IOR(MY_RNG_IOCTL_MAGIC, 4, struct my_rng_info)
#define MY_RNG_IOCTL_SEED_READ	_IOWR(MY_RNG_IOCTL_MAGIC, 5, struct my_rng_seed_read)

#endif /* _UAPI_MISC_MY_RNG_H */
