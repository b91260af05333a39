// Q4_1 and Q8_0 weights re-laid out in panels of 16 rows for batched decoding (12–16 input rows).
//
// The row-major block kernels (Quantized.c) decode a weight once and then need it broadcast to the 16
// input lanes: they decode whole rows into an L1 buffer and run the fp32 register tile over it, which
// costs a store and a broadcast reload per weight on top of the FMA. A panel instead stores, per 32-weight
// block, the 16 rows' scales side by side and the 16 rows' quants of each column k together, so one
// load + widen + convert + FMA (q·d + m) yields column k of 16 rows as a vector, and 16 FMAs with the
// input rows' x[r, k] as broadcasts consume it: 16 useful FMAs per 17 on the FMA pipes. The weights stay
// at ~5 bits (Q4_1) / ~8.5 bits (Q8_0) each, so batch-16 decoding is compute-bound instead of streaming
// 4-byte weights from memory.
//
// Exactness: q·d is exact in fp32 and fma(q, d, m) rounds as the reference q·d + m (Quantized.c), and each
// output is Σ_k fma(w, x, acc) over k in order — the operations of the fp32 transposed tile
// (rk_gemm_few_rows_t16) on the dequantised matrix, so results are bit-identical to it.
//
// Layout, per panel p (logical rows 16p … 16p + 15; rows past the matrix are zero) and block b of 32 columns:
//   Q4_1 (320 bytes): fp16 d[16], fp16 m[16], then for j < 16 sixteen bytes: row n's q[2j] | q[2j + 1] << 4
//   Q8_0 (544 bytes): fp16 d[16], then for j < 32 sixteen int8: row n's q[j]
// Panels follow each other; panel p starts at p · (k / 32) · block bytes.
#include "CKernels.h"
#include "FewRowsTile.h"
#include <string.h>

#pragma STDC FP_CONTRACT OFF

static size_t qp_block_bytes(int type) { return type == RK_QTYPE_Q4_1 ? 320 : type == RK_QTYPE_Q8_0 ? 544 : 0; }

size_t rk_qpanels_size(int type, size_t rows, size_t k) {
    if (qp_block_bytes(type) == 0 || k % 32 != 0) return 0;
    return (rows + 15) / 16 * (k / 32) * qp_block_bytes(type);
}

void rk_qpanels_pack(void *dst, const void *blocks, int type, size_t row_bytes, const int32_t *row_map, size_t rows,
                     size_t k, size_t p0, size_t p1) {
    const size_t bb = qp_block_bytes(type), nb = k / 32, sb = type == RK_QTYPE_Q4_1 ? 20 : 34;
    if (bb == 0 || k % 32 != 0) return;
    for (size_t p = p0; p < p1; p++) {
        uint8_t *out = (uint8_t *)dst + p * nb * bb;
        memset(out, 0, nb * bb);
        for (size_t n = 0; n < 16 && 16 * p + n < rows; n++) {
            const uint8_t *row = rk_mapped_row(blocks, row_bytes, row_map, 16 * p + n);
            for (size_t b = 0; b < nb; b++) {
                const uint8_t *src = row + b * sb;
                uint8_t *o = out + b * bb;
                memcpy(o + 2 * n, src, 2);  // d
                if (type == RK_QTYPE_Q4_1) {
                    memcpy(o + 32 + 2 * n, src + 2, 2);  // m
                    const uint8_t *qs = src + 4;
                    for (size_t j = 0; j < 16; j++) {
                        size_t i0 = 2 * j, i1 = 2 * j + 1;
                        uint8_t q0 = i0 < 16 ? qs[i0] & 0xF : qs[i0 - 16] >> 4;
                        uint8_t q1 = i1 < 16 ? qs[i1] & 0xF : qs[i1 - 16] >> 4;
                        o[64 + 16 * j + n] = (uint8_t)(q0 | q1 << 4);
                    }
                } else {
                    for (size_t j = 0; j < 32; j++) o[32 + 16 * j + n] = src[2 + j];
                }
            }
        }
    }
}

// One 32-column block of a panel decoded column by column: w[i][n] = weight (16p + n, 32b + i), as the reference
// (q·d + m, multiply and add separate). Column i's 16 quants are adjacent in the panel, so every loop over n
// is element-wise and compilers vectorise it (SSE2, NEON).
static void qp_decode_block_portable(float w[32][16], const uint8_t *pb, int type) {
    float d[16], mn[16];
    for (size_t n = 0; n < 16; n++) {
        uint16_t h;
        memcpy(&h, pb + 2 * n, 2);
        d[n] = rk_half_to_float(h);
        mn[n] = 0.0f;
        if (type == RK_QTYPE_Q4_1) { memcpy(&h, pb + 32 + 2 * n, 2); mn[n] = rk_half_to_float(h); }
    }
    if (type == RK_QTYPE_Q4_1) {
        for (size_t j = 0; j < 16; j++) {
            const uint8_t *q = pb + 64 + 16 * j;
            for (size_t n = 0; n < 16; n++) w[2 * j][n] = (float)(q[n] & 0xF) * d[n] + mn[n];
            for (size_t n = 0; n < 16; n++) w[2 * j + 1][n] = (float)(q[n] >> 4) * d[n] + mn[n];
        }
    } else {
        for (size_t i = 0; i < 32; i++) {
            const uint8_t *q = pb + 32 + 16 * i;
            for (size_t n = 0; n < 16; n++) w[i][n] = (float)(int8_t)q[n] * d[n];
        }
    }
}

static void qp_gemm_portable(float *y, size_t ldy, const float *xt, const void *panels, int type, size_t rows, size_t m,
                             size_t p0, size_t p1, size_t k, int acc) {
    const size_t bb = qp_block_bytes(type), nb = k / 32;
    for (size_t p = p0; p < p1; p++) {
        float s[16][16] = {{0}};  // s[n][r]: weight row 16p + n, input row r
        const uint8_t *pb = (const uint8_t *)panels + p * nb * bb;
        for (size_t b = 0; b < nb; b++, pb += bb) {
            float w[32][16];
            qp_decode_block_portable(w, pb, type);
            // Two weight rows at a time: 8 independent 4-lane chains (SSE2) instead of 4, so the adds' latency
            // is hidden; each output still sums over k in order.
            for (size_t n = 0; n < 16; n += 2)
                for (size_t i = 0; i < 32; i++) {
                    const float *xk = xt + (b * 32 + i) * 16;
                    for (size_t r = 0; r < 16; r++) {  // lanes ≥ m are packed zeros
                        s[n][r] += w[i][n] * xk[r];
                        s[n + 1][r] += w[i][n + 1] * xk[r];
                    }
                }
        }
        for (size_t r = 0; r < m; r++)
            for (size_t n = 0; n < 16 && 16 * p + n < rows; n++) {
                float *o = y + r * ldy + 16 * p + n;
                *o = acc ? *o + s[n][r] : s[n][r];
            }
    }
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define RK_QP_X86 1

// Prefetches the lines of step s (into L2; they reach L3 as L2 evicts them).
static void qp_prefetch_step(const rk_prefetch_list *pf, size_t s) {
    size_t total = pf->ends[pf->count - 1], c = s * pf->per_step, end = c + pf->per_step;
    if (c >= total) return;
    if (end > total) end = total;
    size_t lo = 0, hi = pf->count;  // the range holding line c: first i with ends[i] > c
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (pf->ends[mid] > c) hi = mid; else lo = mid + 1;
    }
    for (size_t i = lo; c < end; i++) {
        size_t first = i ? pf->ends[i - 1] : 0;
        for (; c < end && c < pf->ends[i]; c++) _mm_prefetch((const char *)pf->starts[i] + (c - first) * 64, _MM_HINT_T1);
    }
}

#define RK_QP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define RK_QP_INLINE static inline __attribute__((always_inline))

// acc[r] += w · x[r, k] for r < MR (x[r, k] = xk[r], a broadcast folded into the FMA).
#define QP_FMAS(MR, w, xk)                                                                    \
    for (int r = 0; r < MR; r++) acc[r] = _mm512_fmadd_ps(w, _mm512_set1_ps((xk)[r]), acc[r]);

// One panel, all k: acc[r] = Σ_k W[16p + lane, k] · x[r, k].
#define QP_PANEL(MR)                                                                                         \
    RK_QP_AVX512 RK_QP_INLINE void qp_panel_q41_##MR(__m512 *acc, const uint8_t *pb, const float *xt, size_t nb, \
                                                     const rk_prefetch_list *pf, size_t step) {              \
        const __m512i low = _mm512_set1_epi32(0xF);                                                          \
        for (size_t b = 0; b < nb; b++, pb += 320, xt += 32 * 16) {                                          \
            if (pf) qp_prefetch_step(pf, step + b);                                                          \
            const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)pb));                       \
            const __m512 m = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(pb + 32)));                \
            for (int j = 0; j < 16; j++) {                                                                   \
                __m512i raw = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(pb + 64 + 16 * j)));    \
                __m512 w0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(raw, low)), d, m);           \
                __m512 w1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(raw, 4)), d, m);            \
                QP_FMAS(MR, w0, xt + (2 * j) * 16)                                                           \
                QP_FMAS(MR, w1, xt + (2 * j + 1) * 16)                                                       \
            }                                                                                                \
        }                                                                                                    \
    }                                                                                                        \
    RK_QP_AVX512 RK_QP_INLINE void qp_panel_q80_##MR(__m512 *acc, const uint8_t *pb, const float *xt, size_t nb, \
                                                     const rk_prefetch_list *pf, size_t step) {              \
        for (size_t b = 0; b < nb; b++, pb += 544, xt += 32 * 16) {                                          \
            if (pf) qp_prefetch_step(pf, step + b);                                                          \
            const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)pb));                       \
            for (int j = 0; j < 32; j++) {                                                                   \
                __m512i raw = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(pb + 32 + 16 * j)));    \
                __m512 w = _mm512_mul_ps(_mm512_cvtepi32_ps(raw), d);                                        \
                QP_FMAS(MR, w, xt + j * 16)                                                                  \
            }                                                                                                \
        }                                                                                                    \
    }                                                                                                        \
    RK_QP_AVX512 static void qp_gemm_##MR(float *y, size_t ldy, const float *xt, const void *panels, int type,   \
                                          size_t rows, size_t m, size_t p0, size_t p1, size_t k, int accumulate,  \
                                          const rk_prefetch_list *pf, size_t step0) {                            \
        const size_t bb = qp_block_bytes(type), nb = k / 32;                                                 \
        for (size_t p = p0; p < p1; p++) {                                                                   \
            const uint8_t *pb = (const uint8_t *)panels + p * nb * bb;                                       \
            __m512 acc[MR];                                                                                  \
            for (int r = 0; r < MR; r++) acc[r] = _mm512_setzero_ps();                                       \
            if (type == RK_QTYPE_Q4_1) qp_panel_q41_##MR(acc, pb, xt, nb, pf, step0 + p * nb);                               \
            else qp_panel_q80_##MR(acc, pb, xt, nb, pf, step0 + p * nb);                                                     \
            size_t n = 16 * p, live = rows - n < 16 ? rows - n : 16;                                         \
            __mmask16 lanes = live == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << live) - 1u);               \
            for (size_t r = 0; r < m; r++) {                                                                 \
                float *o = y + r * ldy + n;                                                                  \
                __m512 v = accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, o), acc[r]) : acc[r];     \
                _mm512_mask_storeu_ps(o, lanes, v);                                                          \
            }                                                                                                \
        }                                                                                                    \
    }
QP_PANEL(16)
QP_PANEL(12)

// AVX2: a panel column is two ymm (rows 0–7, 8–15). With 16 registers a pass covers one half of the panel
// against MR ≤ 8 input rows (8 accumulators, the scales, the widened quants, two decoded columns and the
// broadcast input); 16 input rows take 2 × 2 passes, each decoding its half of the columns again (2 FMAs
// of decoding per 16 useful ones). Each output is still one FMA chain over k in order: bit-identical to the
// AVX2 fp32 tile on the dequantised matrix, as the AVX-512 panels are to theirs.
#define RK_QP_AVX2 __attribute__((target("avx2,fma,f16c")))

// acc[r] += x[r, k] · w (a broadcast of the input, one FMA per input row).
#define QP2_FMAS(MR, w, xk)                                                                    \
    for (int r = 0; r < MR; r++) acc[r] = _mm256_fmadd_ps(w, _mm256_broadcast_ss((xk) + r), acc[r]);

#define QP_PANEL2(MR)                                                                                        \
    RK_QP_AVX2 RK_QP_INLINE void qp2_q41_##MR(__m256 *acc, const uint8_t *pb, const float *xt, size_t nb, size_t half, \
                                              const rk_prefetch_list *pf, size_t step) {                     \
        const __m256i low = _mm256_set1_epi32(0xF);                                                          \
        for (size_t b = 0; b < nb; b++, pb += 320, xt += 32 * 16) {                                          \
            if (pf) qp_prefetch_step(pf, step + b);                                                          \
            const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(pb + 16 * half)));            \
            const __m256 m = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(pb + 32 + 16 * half)));       \
            for (int j = 0; j < 16; j++) {                                                                   \
                __m256i raw = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(pb + 64 + 16 * j + 8 * half))); \
                __m256 w0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(raw, low)), d, m);           \
                __m256 w1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(raw, 4)), d, m);            \
                QP2_FMAS(MR, w0, xt + (2 * j) * 16)                                                          \
                QP2_FMAS(MR, w1, xt + (2 * j + 1) * 16)                                                      \
            }                                                                                                \
        }                                                                                                    \
    }                                                                                                        \
    RK_QP_AVX2 RK_QP_INLINE void qp2_q80_##MR(__m256 *acc, const uint8_t *pb, const float *xt, size_t nb, size_t half, \
                                              const rk_prefetch_list *pf, size_t step) {                     \
        for (size_t b = 0; b < nb; b++, pb += 544, xt += 32 * 16) {                                          \
            if (pf) qp_prefetch_step(pf, step + b);                                                          \
            const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(pb + 16 * half)));            \
            for (int j = 0; j < 32; j++) {                                                                   \
                __m256i raw = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(pb + 32 + 16 * j + 8 * half))); \
                __m256 w = _mm256_mul_ps(_mm256_cvtepi32_ps(raw), d);                                        \
                QP2_FMAS(MR, w, xt + j * 16)                                                                 \
            }                                                                                                \
        }                                                                                                    \
    }                                                                                                        \
    RK_QP_AVX2 static void qp2_pass_##MR(float *y, size_t ldy, const float *xt, const uint8_t *pb, int type, size_t nb, \
                                         size_t half, size_t live, size_t mr, int accumulate,                  \
                                         const rk_prefetch_list *pf, size_t step) {                            \
        __m256 acc[MR];                                                                                      \
        for (int r = 0; r < MR; r++) acc[r] = _mm256_setzero_ps();                                           \
        if (type == RK_QTYPE_Q4_1) qp2_q41_##MR(acc, pb, xt, nb, half, pf, step);                            \
        else qp2_q80_##MR(acc, pb, xt, nb, half, pf, step);                                                  \
        const __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)live), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); \
        for (size_t r = 0; r < mr; r++) {                                                                    \
            float *o = y + r * ldy;                                                                          \
            __m256 v = accumulate ? _mm256_add_ps(_mm256_maskload_ps(o, lanes), acc[r]) : acc[r];            \
            _mm256_maskstore_ps(o, lanes, v);                                                                \
        }                                                                                                    \
    }
QP_PANEL2(8)
QP_PANEL2(4)

RK_QP_AVX2 static void qp_gemm_avx2(float *y, size_t ldy, const float *xt, const void *panels, int type, size_t rows,
                                    size_t m, size_t p0, size_t p1, size_t k, int accumulate, const rk_prefetch_list *pf,
                                    size_t step0) {
    const size_t bb = qp_block_bytes(type), nb = k / 32;
    for (size_t p = p0; p < p1; p++) {
        const uint8_t *pb = (const uint8_t *)panels + p * nb * bb;
        for (size_t half = 0; half < 2; half++) {
            size_t n = 16 * p + 8 * half;
            if (n >= rows) break;
            size_t live = rows - n < 8 ? rows - n : 8;
            for (size_t r0 = 0; r0 < m; r0 += 8) {
                size_t mr = m - r0 < 8 ? m - r0 : 8;
                const rk_prefetch_list *ppf = half == 0 && r0 == 0 ? pf : NULL;  // each block's step once
                if (mr <= 4) qp2_pass_4(y + r0 * ldy + n, ldy, xt + r0, pb, type, nb, half, live, mr, accumulate, ppf, step0 + p * nb);
                else qp2_pass_8(y + r0 * ldy + n, ldy, xt + r0, pb, type, nb, half, live, mr, accumulate, ppf, step0 + p * nb);
            }
        }
    }
}

// One input row (batch-1 decoding) on AVX2, where the row-major Q4_1 product spends ~a quarter of its time
// converting and broadcasting each block's fp16 scales: in a panel the 16 rows' scales are two vectors
// (no broadcasts), and each column's quants widen straight into the rows' lanes; the input element is the
// broadcast. Same bytes per weight as the blocks.
// Each block is factorised (as ggml's vec_dot_q4_1 does, there with 8-bit inputs; here the input stays
// fp32): Σ_i x_i·(q_i·d + m) = d·Σ_i x_i·q_i + m·Σ_i x_i, and Q8_0's Σ_i x_i·(q_i·d) = d·Σ_i x_i·q_i. The
// quants are converted and multiplied by the input at once, and the scales enter once per block (2 FMAs per
// 16 rows) instead of once per weight: 4 FMAs per 32 weights instead of 8 (Q8_0: 4 for 4 + 4 multiplies).
// Σ_i x_i per block comes from the caller (rk_block_sums, once per input row). This rounds differently from the dequantised product (its
// terms are |q·d| and |m| rather than |q·d + m|), within a few ulp of Σ|x|·(|q·d| + |m|) per block; the
// tests hold it to the 1e-5 of Σ|x·w| that every quantised product meets. Eight accumulators per block
// (rows 0–7 / 8–15 × even / odd column × even / odd column pair) keep the FMA chains off the critical path.
RK_QP_AVX2 static void qp_gemv_avx2(float *y, const float *x, const float *xsums, const void *panels, int type,
                                    size_t rows, size_t p0, size_t p1, size_t k, int accumulate) {
    const size_t bb = qp_block_bytes(type), nb = k / 32;
    const int q41 = type == RK_QTYPE_Q4_1;
    const __m256i low = _mm256_set1_epi32(0xF);
    for (size_t p = p0; p < p1; p++) {
        const uint8_t *pb = (const uint8_t *)panels + p * nb * bb;
        const float *xb = x;
        __m256 t0 = _mm256_setzero_ps(), t1 = t0;
        for (size_t b = 0; b < nb; b++, pb += bb, xb += 32) {
            for (size_t l = 0; l < bb; l += 64) _mm_prefetch((const char *)pb + 4096 + l, _MM_HINT_T0);  // 4 KB ahead
            __m256 c[8];
            for (int t = 0; t < 8; t++) c[t] = _mm256_setzero_ps();
            if (q41) {
                for (int j = 0; j < 16; j += 2)
                    for (int u = 0; u < 2; u++) {  // column pair j + u: columns 2(j + u) (low) and 2(j + u) + 1 (high)
                        const uint8_t *q = pb + 64 + 16 * (j + u);
                        __m256i r0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)q));
                        __m256i r1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(q + 8)));
                        __m256 x0 = _mm256_broadcast_ss(xb + 2 * (j + u)), x1 = _mm256_broadcast_ss(xb + 2 * (j + u) + 1);
                        c[4 * u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(r0, low)), x0, c[4 * u]);
                        c[4 * u + 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(r0, 4)), x1, c[4 * u + 1]);
                        c[4 * u + 2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(r1, low)), x0, c[4 * u + 2]);
                        c[4 * u + 3] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(r1, 4)), x1, c[4 * u + 3]);
                    }
            } else {
                for (int j = 0; j < 32; j += 4)
                    for (int u = 0; u < 2; u++) {  // columns j + 2u and j + 2u + 1
                        const uint8_t *q = pb + 32 + 16 * (j + 2 * u);
                        __m256 x0 = _mm256_broadcast_ss(xb + j + 2 * u), x1 = _mm256_broadcast_ss(xb + j + 2 * u + 1);
                        c[4 * u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)q))), x0, c[4 * u]);
                        c[4 * u + 2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + 8)))), x0, c[4 * u + 2]);
                        c[4 * u + 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + 16)))), x1, c[4 * u + 1]);
                        c[4 * u + 3] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + 24)))), x1, c[4 * u + 3]);
                    }
            }
            const __m256 lo = _mm256_add_ps(_mm256_add_ps(c[0], c[1]), _mm256_add_ps(c[4], c[5]));
            const __m256 hi = _mm256_add_ps(_mm256_add_ps(c[2], c[3]), _mm256_add_ps(c[6], c[7]));
            t0 = _mm256_fmadd_ps(lo, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)pb)), t0);
            t1 = _mm256_fmadd_ps(hi, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(pb + 16))), t1);
            if (q41) {
                const __m256 sxb = _mm256_broadcast_ss(xsums + b);
                t0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(pb + 32))), sxb, t0);
                t1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(pb + 48))), sxb, t1);
            }
        }
        __m256 h[2] = {t0, t1};
        for (size_t half = 0; half < 2; half++) {
            size_t n = 16 * p + 8 * half;
            if (n >= rows) break;
            size_t live = rows - n < 8 ? rows - n : 8;
            const __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)live), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            __m256 v = accumulate ? _mm256_add_ps(_mm256_maskload_ps(y + n, lanes), h[half]) : h[half];
            _mm256_maskstore_ps(y + n, lanes, v);
        }
    }
}

// The same factorised product on AVX-512: a panel column is one zmm (all 16 rows), so a column pair costs one
// widening load, two converts and two FMAs where AVX2 needs two of each per half (about half the
// instructions per weight, which at batch 1 leaves the product bound by streaming the panels). Four
// accumulators per block (even / odd column × even / odd column pair) and two across blocks keep the FMA
// chains off the critical path. Same rounding argument and bound as qp_gemv_avx2.
RK_QP_AVX512 static void qp_gemv_avx512(float *y, const float *x, const float *xsums, const void *panels, int type,
                                        size_t rows, size_t p0, size_t p1, size_t k, int accumulate) {
    const size_t bb = qp_block_bytes(type), nb = k / 32;
    const int q41 = type == RK_QTYPE_Q4_1;
    const __m512i low = _mm512_set1_epi32(0xF);
    for (size_t p = p0; p < p1; p++) {
        const uint8_t *pb = (const uint8_t *)panels + p * nb * bb;
        const float *xb = x;
        __m512 t0 = _mm512_setzero_ps(), t1 = t0;
        for (size_t b = 0; b < nb; b++, pb += bb, xb += 32) {
            for (size_t l = 0; l < bb; l += 64) _mm_prefetch((const char *)pb + 4096 + l, _MM_HINT_T0);  // 4 KB ahead
            __m512 c[4];
            for (int t = 0; t < 4; t++) c[t] = _mm512_setzero_ps();
            if (q41) {
                for (int j = 0; j < 16; j += 2)
                    for (int u = 0; u < 2; u++) {  // column pair j + u: columns 2(j + u) (low) and 2(j + u) + 1 (high)
                        __m512i r = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(pb + 64 + 16 * (j + u))));
                        c[2 * u] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(r, low)),
                                                   _mm512_set1_ps(xb[2 * (j + u)]), c[2 * u]);
                        c[2 * u + 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(r, 4)),
                                                       _mm512_set1_ps(xb[2 * (j + u) + 1]), c[2 * u + 1]);
                    }
            } else {
                for (int j = 0; j < 32; j += 4)
                    for (int u = 0; u < 4; u++) {  // column j + u
                        __m512i r = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(pb + 32 + 16 * (j + u))));
                        c[u] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(r), _mm512_set1_ps(xb[j + u]), c[u]);
                    }
            }
            const __m512 s = _mm512_add_ps(_mm512_add_ps(c[0], c[1]), _mm512_add_ps(c[2], c[3]));
            t0 = _mm512_fmadd_ps(s, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)pb)), t0);
            if (q41)
                t1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(pb + 32))),
                                     _mm512_set1_ps(xsums[b]), t1);
        }
        size_t n = 16 * p, live = rows - n < 16 ? rows - n : 16;
        __mmask16 lanes = live == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << live) - 1u);
        __m512 v = _mm512_add_ps(t0, t1);
        if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, y + n), v);
        _mm512_mask_storeu_ps(y + n, lanes, v);
    }
}

RK_QP_AVX2 static void block_sums_avx2(float *sums, const float *x, size_t k) {
    for (size_t b = 0; b < k / 32; b++) {
        const float *xb = x + 32 * b;
        __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(xb), _mm256_loadu_ps(xb + 8)),
                                 _mm256_add_ps(_mm256_loadu_ps(xb + 16), _mm256_loadu_ps(xb + 24)));
        __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        sums[b] = _mm_cvtss_f32(_mm_add_ss(s4, _mm_movehdup_ps(s4)));
    }
}
#else
#define RK_QP_X86 0
#endif

static void qp_gemv_portable(float *y, const float *x, const void *panels, int type, size_t rows, size_t p0, size_t p1,
                             size_t k, int acc) {
    const size_t bb = qp_block_bytes(type), nb = k / 32;
    for (size_t p = p0; p < p1; p++) {
        float s[16] = {0};
        const uint8_t *pb = (const uint8_t *)panels + p * nb * bb;
        for (size_t b = 0; b < nb; b++, pb += bb) {
            float w[32][16];
            qp_decode_block_portable(w, pb, type);
            for (size_t i = 0; i < 32; i++)
                for (size_t n = 0; n < 16; n++) s[n] += w[i][n] * x[b * 32 + i];
        }
        for (size_t n = 0; n < 16 && 16 * p + n < rows; n++) y[16 * p + n] = acc ? y[16 * p + n] + s[n] : s[n];
    }
}

void rk_block_sums(float *sums, const float *x, size_t k) {
#if RK_QP_X86
    if (rk_path() != RK_PATH_PORTABLE) { block_sums_avx2(sums, x, k); return; }
#endif
    for (size_t b = 0; b < k / 32; b++) {  // a pairwise tree, element-wise at each level: compilers vectorise it
        const float *xb = x + 32 * b;
        float t[8];
        for (int j = 0; j < 8; j++) t[j] = (xb[j] + xb[j + 8]) + (xb[j + 16] + xb[j + 24]);
        sums[b] = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
    }
}

void rk_qpanels_gemv(float *y, const float *x, const float *xsums, const void *panels, int type, size_t rows, size_t p0,
                     size_t p1, size_t k, int accumulate) {
    if (qp_block_bytes(type) == 0 || k % 32 != 0 || p0 >= p1) return;
#if RK_QP_X86
    switch (rk_path()) {
    case RK_PATH_AVX512: qp_gemv_avx512(y, x, xsums, panels, type, rows, p0, p1, k, accumulate); return;
    case RK_PATH_AVX2: qp_gemv_avx2(y, x, xsums, panels, type, rows, p0, p1, k, accumulate); return;
    default: break;
    }
#endif
    qp_gemv_portable(y, x, panels, type, rows, p0, p1, k, accumulate);
}

void rk_qpanels_gemm_t16(float *y, size_t ldy, const float *xt, const void *panels, int type, size_t rows, size_t m,
                         size_t p0, size_t p1, size_t k, int accumulate, const rk_prefetch_list *prefetch, size_t step0) {
    if (qp_block_bytes(type) == 0 || k % 32 != 0 || m == 0 || m > 16 || p0 >= p1) return;
    if (prefetch && (prefetch->count == 0 || prefetch->per_step == 0)) prefetch = NULL;
#if RK_QP_X86
    switch (rk_path()) {
    case RK_PATH_AVX512:
        if (m <= 12) qp_gemm_12(y, ldy, xt, panels, type, rows, m, p0, p1, k, accumulate, prefetch, step0);
        else qp_gemm_16(y, ldy, xt, panels, type, rows, m, p0, p1, k, accumulate, prefetch, step0);
        return;
    case RK_PATH_AVX2: qp_gemm_avx2(y, ldy, xt, panels, type, rows, m, p0, p1, k, accumulate, prefetch, step0); return;
    default: break;
    }
#endif
    qp_gemm_portable(y, ldy, xt, panels, type, rows, m, p0, p1, k, accumulate);
}
