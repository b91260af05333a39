// Private to _CKernels: helpers the kernel files share (row maps, fp16 decoding) and the register tile of
// the transposed few-row product (Kernels.c, Quantized.c, BF16.c, Panels.c).
// C[n, m] = Σ_k w[n, k] · xt[k, m] with the M ≤ 16 input rows packed as xt[k][16] (one zmm per k):
// each k broadcasts one weight of each of NR weight rows (a broadcast load folded into the FMA) and
// multiplies the same 16-lane vector, so NR accumulators hold an NR × 16 tile of the output and no
// horizontal reduction is needed (the dot-product form spends ~20 % of its time in them at M = 16).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>

// Row r of a matrix stored as rows of `rb` bytes, through the logical → physical row map when there is one.
static inline const uint8_t *rk_mapped_row(const void *w, size_t rb, const int32_t *map, size_t r) {
    return (const uint8_t *)w + (map ? (size_t)map[r] : r) * rb;
}

// fp16 bits → fp32, the same algorithm as ModelFormats' floatFromHalfBits (exact for every input,
// NaN payloads kept).
static inline float rk_half_to_float(uint16_t h) {
    const uint32_t shifted_exp = 0x7C00u << 13;
    uint32_t o = (uint32_t)(h & 0x7FFF) << 13;
    uint32_t e = shifted_exp & o;
    o += (uint32_t)(127 - 15) << 23;
    if (e == shifted_exp) {
        o += (uint32_t)(128 - 16) << 23;
    } else if (e == 0) {
        o += 1u << 23;
        float f, magic;
        uint32_t mb = 113u << 23;
        memcpy(&f, &o, 4);
        memcpy(&magic, &mb, 4);
        f -= magic;
        memcpy(&o, &f, 4);
    }
    o |= (uint32_t)(h & 0x8000) << 16;
    float r;
    memcpy(&r, &o, 4);
    return r;
}

// Portable building blocks, written so that the compiler vectorises them with the baseline ISA (SSE2 on
// x86-64, NEON on aarch64) without reassociating anything: explicit partial sums or independent lanes.

// Σ a[i]·b[i] with 8 partial sums (lane l takes i ≡ l mod 8), then a fixed pairwise reduction and the tail.
static inline float rk_dot_portable(const float *a, const float *b, size_t n) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) s[l] += a[i + l] * b[i + l];
    float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) t += a[i] * b[i];
    return t;
}

// One weight row against the 16 packed input lanes (rk_pack_rows_t16): y[r·ldy] (+)= Σ_k xt[k][r] · w[k] for
// r < m, each lane one chain over k in order (the order of the vector tiles, multiply and add separate).
static inline void rk_t16_row_portable(float *y, size_t ldy, const float *xt, const float *w, size_t m, size_t k, int acc) {
    float s[16] = {0};
    for (size_t i = 0; i < k; i++) {
        const float wi = w[i], *xi = xt + i * 16;
        for (int r = 0; r < 16; r++) s[r] += xi[r] * wi;
    }
    for (size_t r = 0; r < m; r++) y[r * ldy] = acc ? y[r * ldy] + s[r] : s[r];
}

// rk_t16_row_portable for two weight rows at once (outputs y[r·ldy] and y[r·ldy + 1]): twice the independent
// chains, so the adds' latency is hidden, and each output's operations unchanged.
static inline void rk_t16_row2_portable(float *y, size_t ldy, const float *xt, const float *w0, const float *w1,
                                        size_t m, size_t k, int acc) {
    float s0[16] = {0}, s1[16] = {0};
    for (size_t i = 0; i < k; i++) {
        const float a = w0[i], b = w1[i], *xi = xt + i * 16;
        for (int r = 0; r < 16; r++) {
            s0[r] += xi[r] * a;
            s1[r] += xi[r] * b;
        }
    }
    for (size_t r = 0; r < m; r++) {
        y[r * ldy] = acc ? y[r * ldy] + s0[r] : s0[r];
        y[r * ldy + 1] = acc ? y[r * ldy + 1] + s1[r] : s1[r];
    }
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

#define RK_T16_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c"), always_inline))


// acc[j] += Σ_{i < kc} w[j·ldw + i] · xt[i·16 …]   for j < NR (NR a compile-time constant).
// `pf` (may be NULL): the same-shaped rows of the next tile, prefetched one cache line per row every 16 k.
#define RK_T16_TILE(NR)                                                                                     \
    RK_T16_ATTR static inline void rk_t16_tile_##NR(__m512 *acc, const float *xt, const float *w, size_t ldw, \
                                                    size_t kc, const float *pf) {                           \
        __m512 a[NR];                                                                                        \
        for (int j = 0; j < NR; j++) a[j] = acc[j];                                                          \
        size_t i = 0;                                                                                        \
        for (; i + 16 <= kc; i += 16) {                                                                      \
            if (pf) for (int j = 0; j < NR; j++) _mm_prefetch((const char *)(pf + j * ldw + i), _MM_HINT_T0); \
            for (size_t ii = i; ii < i + 16; ii++) {                                                         \
                __m512 xv = _mm512_load_ps(xt + ii * 16);                                                    \
                for (int j = 0; j < NR; j++) a[j] = _mm512_fmadd_ps(_mm512_set1_ps(w[j * ldw + ii]), xv, a[j]); \
            }                                                                                                \
        }                                                                                                    \
        for (; i < kc; i++) {                                                                                \
            __m512 xv = _mm512_load_ps(xt + i * 16);                                                         \
            for (int j = 0; j < NR; j++) a[j] = _mm512_fmadd_ps(_mm512_set1_ps(w[j * ldw + i]), xv, a[j]);  \
        }                                                                                                    \
        for (int j = 0; j < NR; j++) acc[j] = a[j];                                                          \
    }
RK_T16_TILE(12)
RK_T16_TILE(4)
RK_T16_TILE(1)

// The same tile with the roles of the weight's strides swapped: acc[j] += Σ_{i < kc} w[i·ldi + j] · xt[i·16 …]
// (the tile's NR "rows" are NR consecutive columns of a row-major matrix, e.g. 16 columns of V).
RK_T16_ATTR static inline void rk_t16_tile_cols16(__m512 *acc, const float *xt, const float *w, size_t ldi, size_t kc) {
    __m512 a[16];
    for (int j = 0; j < 16; j++) a[j] = acc[j];
    for (size_t i = 0; i < kc; i++) {
        __m512 xv = _mm512_load_ps(xt + i * 16);
        const float *wr = w + i * ldi;
        for (int j = 0; j < 16; j++) a[j] = _mm512_fmadd_ps(_mm512_set1_ps(wr[j]), xv, a[j]);
    }
    for (int j = 0; j < 16; j++) acc[j] = a[j];
}

// The RK_T16_NR row pointers of the tile starting at row n (< n1; rows past n1 repeat the last one) and
// of the next tile (to prefetch; clamped the same way). Returns the tile's real row count.
static inline int rk_t16_tile_rows(const uint8_t **w, const uint8_t **pf, const void *m, size_t rb, const int32_t *map,
                                   size_t n, size_t n1) {
    int nr = n1 - n < RK_T16_NR ? (int)(n1 - n) : RK_T16_NR;
    for (int j = 0; j < RK_T16_NR; j++) {
        w[j] = rk_mapped_row(m, rb, map, n + (size_t)(j < nr ? j : nr - 1));
        size_t pn = n + RK_T16_NR + (size_t)j;
        pf[j] = rk_mapped_row(m, rb, map, pn < n1 ? pn : n1 - 1);
    }
    return nr;
}

// AVX2 (16 ymm registers): a 16-lane column is two ymm, so a register tile holds 6 weight rows (12
// accumulators + the 2 input halves + the broadcast weight); RK_T16_NR rows are two such tiles over the
// same columns. acc[2j] holds lanes 0–7 of row j, acc[2j + 1] lanes 8–15. Each output is still one FMA chain
// over k in order, so the AVX2 and AVX-512 tiles compute bit-identical results.
#define RK_T16V2_ATTR __attribute__((target("avx2,fma,f16c"), always_inline))

// Not inlined: inside a caller that holds two tiles' accumulators (24 ymm) the register allocator spilled
// accumulators in the inner loop. Measured (Benchmarks gemv, a batch-16 decode step's fp32 projections from
// cache): 59–62 → 99–103 GFLOP/s; a call per column chunk costs nothing measurable.
#define RK_T16V2_TILE(NR)                                                                                     \
    __attribute__((target("avx2,fma,f16c"), noinline)) static inline void rk_t16v2_tile_##NR(__m256 *acc, const float *xt, const float *w, size_t ldw, \
                                                        size_t kc, const float *pf) {                           \
        __m256 a[2 * NR];                                                                                      \
        for (int j = 0; j < 2 * NR; j++) a[j] = acc[j];                                                        \
        for (size_t i = 0; i < kc; i++) {                                                                      \
            if (pf && (i & 15) == 0) for (int j = 0; j < NR; j++) _mm_prefetch((const char *)(pf + j * ldw + i), _MM_HINT_T0); \
            __m256 x0 = _mm256_load_ps(xt + i * 16), x1 = _mm256_load_ps(xt + i * 16 + 8);                  \
            for (int j = 0; j < NR; j++) {                                                                     \
                __m256 b = _mm256_broadcast_ss(w + j * ldw + i);                                               \
                a[2 * j] = _mm256_fmadd_ps(b, x0, a[2 * j]);                                                   \
                a[2 * j + 1] = _mm256_fmadd_ps(b, x1, a[2 * j + 1]);                                           \
            }                                                                                                  \
        }                                                                                                      \
        for (int j = 0; j < 2 * NR; j++) acc[j] = a[j];                                                        \
    }
RK_T16V2_TILE(6)
RK_T16V2_TILE(4)
RK_T16V2_TILE(1)

// RK_T16_NR (= 12) rows as two 6-row tiles, alternating over column chunks of 256 (16 KB of packed input,
// which stays in L1 for the second tile). `pf`: the next tile's rows, as for rk_t16_tile_12.
RK_T16V2_ATTR static inline void rk_t16v2_tile_12(__m256 *acc, const float *xt, const float *w, size_t ldw, size_t kc,
                                                  const float *pf) {
    for (size_t c0 = 0; c0 < kc; c0 += 256) {
        size_t n = kc - c0 < 256 ? kc - c0 : 256;
        rk_t16v2_tile_6(acc, xt + c0 * 16, w + c0, ldw, n, pf ? pf + c0 : NULL);
        rk_t16v2_tile_6(acc + 12, xt + c0 * 16, w + 6 * ldw + c0, ldw, n, pf ? pf + 6 * ldw + c0 : NULL);
    }
}

// y[r, j] (+)= row j's lane r for r < m, j < nr ≤ 16 (acc as above).
RK_T16V2_ATTR static inline void rk_t16v2_store(float *y, size_t ldy, const __m256 *acc, int nr, size_t m, int accumulate) {
    float t[16][16] __attribute__((aligned(32)));
    for (int j = 0; j < nr; j++) { _mm256_store_ps(t[j], acc[2 * j]); _mm256_store_ps(t[j] + 8, acc[2 * j + 1]); }
    for (size_t r = 0; r < m; r++) {
        float *yr = y + r * ldy;
        if (accumulate) { for (int j = 0; j < nr; j++) yr[j] += t[j][r]; }
        else { for (int j = 0; j < nr; j++) yr[j] = t[j][r]; }
    }
}

// y[r, j] (+)= acc[j][r] for r < m, j < nr ≤ 16: the tile transposed back to y's [M, N] layout.
RK_T16_ATTR static inline void rk_t16_store(float *y, size_t ldy, const __m512 *acc, int nr, size_t m, int accumulate) {
    float t[16][16] __attribute__((aligned(64)));
    for (int j = 0; j < nr; j++) _mm512_store_ps(t[j], acc[j]);
    for (size_t r = 0; r < m; r++) {
        float *yr = y + r * ldy;
        if (accumulate) { for (int j = 0; j < nr; j++) yr[j] += t[j][r]; }
        else { for (int j = 0; j < nr; j++) yr[j] = t[j][r]; }
    }
}
#endif
