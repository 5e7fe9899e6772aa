/*
 * my-rng: the device's random number generators
 *
 * Kept apart from the device model so that hw/misc/my-rng.c holds only
 * device logic.  The state structures are public because the device
 * migrates them field by field.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_MISC_MY_RNG_GEN_H
#define HW_MISC_MY_RNG_GEN_H

/* glibc random_r() TYPE_3: x^31 + x^3 + 1 */
#define MY_RNG_GLIBC_DEG            31
#define MY_RNG_GLIBC_SEP            3
#define MY_RNG_XOSHIRO_WORDS        4
#define MY_RNG_CHACHA_KEY_WORDS     8
#define MY_RNG_CHACHA_BLOCK_WORDS   16

typedef struct MyRngGlibc {
    uint32_t state[MY_RNG_GLIBC_DEG];
    uint32_t fidx;              /* glibc's fptr as an index into state[] */
    uint32_t ridx;              /* glibc's rptr as an index into state[] */
} MyRngGlibc;

typedef struct MyRngXoshiro {
    uint64_t s[MY_RNG_XOSHIRO_WORDS];
} MyRngXoshiro;

typedef struct MyRngChacha {
    uint32_t key[MY_RNG_CHACHA_KEY_WORDS];
    uint64_t counter;           /* block counter of the next block */
    uint32_t block[MY_RNG_CHACHA_BLOCK_WORDS];
    uint32_t pos;               /* next word of block[]; 16 = used up */
} MyRngChacha;

/* The state of every deterministic algorithm; the caller selects one */
typedef struct MyRngGen {
    MyRngGlibc glibc;
    MyRngXoshiro xoshiro;
    MyRngChacha chacha;
} MyRngGen;

/*
 * @algo is an ALGO register value (MY_RNG_ALGO_*), already checked to be
 * below MY_RNG_NUM_ALGOS.  MY_RNG_ALGO_HOST has no state: seeding it does
 * nothing and its outputs are host entropy.
 */
void my_rng_gen_seed(MyRngGen *g, uint32_t algo, uint32_t seed);
/* Seeds every algorithm, not only a selected one (device reset) */
void my_rng_gen_seed_all(MyRngGen *g, uint32_t seed);
uint32_t my_rng_gen_next32(MyRngGen *g, uint32_t algo);
uint64_t my_rng_gen_next64(MyRngGen *g, uint32_t algo);
/* Whether a state from outside (a migration stream) is safe to run */
bool my_rng_gen_valid(const MyRngGen *g);

#endif
