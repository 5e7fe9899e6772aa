/*
 * my-rng: the device's random number generators
 *
 * Algorithm 0 is glibc's random_r() bit for bit (the v1 contract); 1 and 2
 * are xoshiro256++ and ChaCha20, both seeded through SplitMix64; 3 is host
 * entropy.  The definitions are in spec/my-rng.rst of the my-rng project.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/guest-random.h"
#include "hw/misc/my-rng.h"
#include "my-rng-gen.h"

/*
 * Algorithm 0: glibc srandom_r()/random_r() TYPE_3, bit for bit, but per
 * device instance instead of the host's process-global rand() state.
 */
static uint32_t glibc_next(MyRngGlibc *g)
{
    uint32_t val = g->state[g->fidx] += g->state[g->ridx];

    g->fidx = (g->fidx + 1) % MY_RNG_GLIBC_DEG;
    g->ridx = (g->ridx + 1) % MY_RNG_GLIBC_DEG;
    return val >> 1;
}

static void glibc_seed(MyRngGlibc *g, uint32_t seed)
{
    int32_t word;
    int i;

    /* glibc: "We must make sure the seed is not 0." */
    if (seed == 0) {
        seed = 1;
    }
    word = (int32_t)seed;
    g->state[0] = (uint32_t)word;
    for (i = 1; i < MY_RNG_GLIBC_DEG; i++) {
        /* state[i] = 16807 * state[i - 1] % 2147483647, Schrage's method */
        int64_t hi = word / 127773;
        int64_t lo = word % 127773;

        word = 16807 * lo - 2836 * hi;
        if (word < 0) {
            word += 2147483647;
        }
        g->state[i] = (uint32_t)word;
    }
    g->fidx = MY_RNG_GLIBC_SEP;
    g->ridx = 0;
    for (i = 0; i < MY_RNG_GLIBC_DEG * 10; i++) {
        glibc_next(g);
    }
}

/* SplitMix64, used to expand the 32-bit seed for algorithms 1 and 2 */
static uint64_t splitmix64_next(uint64_t *x)
{
    uint64_t z;

    *x += 0x9e3779b97f4a7c15ULL;
    z = *x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint32_t rotl32(uint32_t x, int k)
{
    return (x << k) | (x >> (32 - k));
}

/* Algorithm 1: xoshiro256++ */
static void xoshiro_seed(MyRngXoshiro *x, uint32_t seed)
{
    uint64_t sm = seed;
    size_t i;

    for (i = 0; i < ARRAY_SIZE(x->s); i++) {
        x->s[i] = splitmix64_next(&sm);
    }
}

static uint64_t xoshiro_next(MyRngXoshiro *x)
{
    uint64_t *s = x->s;
    uint64_t result = rotl64(s[0] + s[3], 23) + s[0];
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Algorithm 2: ChaCha20 keystream, 64-bit block counter, nonce 0 */
#define CHACHA_QR(a, b, c, d) do {                          \
        a += b; d ^= a; d = rotl32(d, 16);                  \
        c += d; b ^= c; b = rotl32(b, 12);                  \
        a += b; d ^= a; d = rotl32(d, 8);                   \
        c += d; b ^= c; b = rotl32(b, 7);                   \
    } while (0)

#define CHACHA_DOUBLE_ROUNDS    10

static void chacha_refill(MyRngChacha *c)
{
    uint32_t in[MY_RNG_CHACHA_BLOCK_WORDS], x[MY_RNG_CHACHA_BLOCK_WORDS];
    int i;

    QEMU_BUILD_BUG_ON(4 + MY_RNG_CHACHA_KEY_WORDS + 4 !=
                      MY_RNG_CHACHA_BLOCK_WORDS);
    /* "expand 32-byte k" */
    in[0] = 0x61707865;
    in[1] = 0x3320646e;
    in[2] = 0x79622d32;
    in[3] = 0x6b206574;
    memcpy(&in[4], c->key, sizeof(c->key));
    in[12] = (uint32_t)c->counter;
    in[13] = (uint32_t)(c->counter >> 32);
    in[14] = 0;
    in[15] = 0;
    memcpy(x, in, sizeof(x));
    for (i = 0; i < CHACHA_DOUBLE_ROUNDS; i++) {
        CHACHA_QR(x[0], x[4], x[8], x[12]);
        CHACHA_QR(x[1], x[5], x[9], x[13]);
        CHACHA_QR(x[2], x[6], x[10], x[14]);
        CHACHA_QR(x[3], x[7], x[11], x[15]);
        CHACHA_QR(x[0], x[5], x[10], x[15]);
        CHACHA_QR(x[1], x[6], x[11], x[12]);
        CHACHA_QR(x[2], x[7], x[8], x[13]);
        CHACHA_QR(x[3], x[4], x[9], x[14]);
    }
    for (i = 0; i < MY_RNG_CHACHA_BLOCK_WORDS; i++) {
        c->block[i] = x[i] + in[i];
    }
    c->counter++;
    c->pos = 0;
}

static void chacha_seed(MyRngChacha *c, uint32_t seed)
{
    uint64_t sm = seed;
    size_t i;

    /* The key is the 32 little-endian bytes of four SplitMix64 outputs */
    for (i = 0; i < ARRAY_SIZE(c->key); i += 2) {
        uint64_t k = splitmix64_next(&sm);

        c->key[i] = (uint32_t)k;
        c->key[i + 1] = (uint32_t)(k >> 32);
    }
    c->counter = 0;
    memset(c->block, 0, sizeof(c->block));
    c->pos = MY_RNG_CHACHA_BLOCK_WORDS;
}

static uint32_t chacha_next(MyRngChacha *c)
{
    if (c->pos >= MY_RNG_CHACHA_BLOCK_WORDS) {
        chacha_refill(c);
    }
    return c->block[c->pos++];
}

void my_rng_gen_seed(MyRngGen *g, uint32_t algo, uint32_t seed)
{
    switch (algo) {
    case MY_RNG_ALGO_GLIBC:
        glibc_seed(&g->glibc, seed);
        break;
    case MY_RNG_ALGO_XOSHIRO256PP:
        xoshiro_seed(&g->xoshiro, seed);
        break;
    case MY_RNG_ALGO_CHACHA20:
        chacha_seed(&g->chacha, seed);
        break;
    default:
        /* HOST has no state */
        break;
    }
}

void my_rng_gen_seed_all(MyRngGen *g, uint32_t seed)
{
    glibc_seed(&g->glibc, seed);
    xoshiro_seed(&g->xoshiro, seed);
    chacha_seed(&g->chacha, seed);
}

uint32_t my_rng_gen_next32(MyRngGen *g, uint32_t algo)
{
    uint32_t v;

    switch (algo) {
    case MY_RNG_ALGO_GLIBC:
        return glibc_next(&g->glibc);
    case MY_RNG_ALGO_XOSHIRO256PP:
        /* the low bits of xoshiro256++ are the weaker ones */
        return xoshiro_next(&g->xoshiro) >> 32;
    case MY_RNG_ALGO_CHACHA20:
        return chacha_next(&g->chacha);
    default:
        qemu_guest_getrandom_nofail(&v, sizeof(v));
        return v;
    }
}

uint64_t my_rng_gen_next64(MyRngGen *g, uint32_t algo)
{
    uint64_t lo, v;

    switch (algo) {
    case MY_RNG_ALGO_XOSHIRO256PP:
        return xoshiro_next(&g->xoshiro);
    case MY_RNG_ALGO_HOST:
        qemu_guest_getrandom_nofail(&v, sizeof(v));
        return v;
    default:
        /* glibc and ChaCha20: two 32-bit outputs, low word first */
        lo = my_rng_gen_next32(g, algo);
        return lo | ((uint64_t)my_rng_gen_next32(g, algo) << 32);
    }
}

bool my_rng_gen_valid(const MyRngGen *g)
{
    const MyRngGlibc *gl = &g->glibc;

    /* the indices are used as array indices: never trust them */
    return gl->fidx < MY_RNG_GLIBC_DEG && gl->ridx < MY_RNG_GLIBC_DEG &&
           (gl->fidx + MY_RNG_GLIBC_DEG - gl->ridx) % MY_RNG_GLIBC_DEG ==
           MY_RNG_GLIBC_SEP &&
           g->chacha.pos <= MY_RNG_CHACHA_BLOCK_WORDS;
}
