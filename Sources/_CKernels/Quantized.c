// Products with weights kept in their GGUF (ggml) block formats: Q4_1, Q8_0, F16, BF16 (and F32).
// Decoding is bit-identical to ggml's reference scalar dequantisers (and ModelFormats'
// GGMLDequantizer): Q8_0 w = (float)q · d, Q4_1 w = (float)q · d + m, fp16 → fp32 exactly, bf16 by a
// 16-bit shift. The product q · d is exact in fp32 (q has at most 8 significant bits, an fp16 d 11), so
// Q4_1's only rounding is the add and a fused q·d + m rounds identically; the AVX-512 table uses an FMA.
// A product here therefore differs from dequantise-then-sgemm only in summation order, except the portable
// few-row Q4_1/Q8_0 product, which factorises each block (qgemm_factored_portable).
//
// Few-row product (decoding, M ≤ 4 input rows): tiles of 4 weight rows × M input rows; each 32-weight
// chunk of each row is decoded in registers and consumed at once (the weights are read from memory once
// and never written back). Q4_1 decodes through a per-block 16-entry table tbl[q] = q·d + m (one FMA per
// block) looked up with vpermps, whose index uses only the low 4 bits of each lane, so the low nibble
// needs no mask and the high nibble one shift; the fp16 (d, m) of 4 consecutive blocks are converted
// together. Measured on Zen 4 (one core, L2-resident): Q4_1 ≈ 4.8 cycles at 2.6 GHz per 32 weights
// (~10 GB/s of Q4_1), Q8_0 ≈ 4.6 (~19 GB/s); M ≥ 2 is FMA-bound like the fp32 kernel.
// M > 4: the 4-row tile is decoded once into a thread-local fp32 scratch and every group of 4 input
// rows runs the fp32 tile over it.
#include "CKernels.h"
#include "FewRowsTile.h"
#include <stdlib.h>
#include <string.h>

// The portable path keeps the reference's separate multiply and add (exact either way, see above).
#pragma STDC FP_CONTRACT OFF

#define RK_Q_INLINE static inline __attribute__((always_inline))

// F(T, args…) with the weight type T as a compile-time constant, so each (ISA, type) kernel is specialised.
#define RK_Q_FOR_TYPE(type, F, ...)                                                   \
    do {                                                                              \
        switch (type) {                                                               \
        case RK_QTYPE_Q4_1: F(RK_QTYPE_Q4_1, __VA_ARGS__); break;                     \
        case RK_QTYPE_Q8_0: F(RK_QTYPE_Q8_0, __VA_ARGS__); break;                     \
        case RK_QTYPE_F16: F(RK_QTYPE_F16, __VA_ARGS__); break;                       \
        case RK_QTYPE_BF16: F(RK_QTYPE_BF16, __VA_ARGS__); break;                     \
        case RK_QTYPE_F32: F(RK_QTYPE_F32, __VA_ARGS__); break;                       \
        default: break;                                                               \
        }                                                                             \
    } while (0)

// ---------------------------------------------------------------- scalar decoding (portable path)
static inline uint16_t q_load16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

static int q_supported(int type) {
    return type == RK_QTYPE_F32 || type == RK_QTYPE_F16 || type == RK_QTYPE_BF16 || type == RK_QTYPE_Q4_1
        || type == RK_QTYPE_Q8_0;
}

// Decodes elements [c0, c0 + n) of one row; for Q4_1/Q8_0, c0 and n are multiples of 32.
static void q_decode_portable(int type, const uint8_t *row, size_t c0, size_t n, float *out) {
    switch (type) {
    case RK_QTYPE_F32: memcpy(out, row + c0 * 4, n * 4); break;
    case RK_QTYPE_F16:
        for (size_t i = 0; i < n; i++) out[i] = rk_half_to_float(q_load16(row + (c0 + i) * 2));
        break;
    case RK_QTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint32_t b = (uint32_t)q_load16(row + (c0 + i) * 2) << 16;
            memcpy(out + i, &b, 4);
        }
        break;
    case RK_QTYPE_Q4_1:
        for (size_t b = c0 / 32; b < (c0 + n) / 32; b++, out += 32) {
            const uint8_t *blk = row + b * 20;
            float d = rk_half_to_float(q_load16(blk)), m = rk_half_to_float(q_load16(blk + 2));
            for (int j = 0; j < 16; j++) {
                float lo = (float)(blk[4 + j] & 0x0F) * d;
                float hi = (float)(blk[4 + j] >> 4) * d;
                out[j] = lo + m;
                out[j + 16] = hi + m;
            }
        }
        break;
    case RK_QTYPE_Q8_0:
        for (size_t b = c0 / 32; b < (c0 + n) / 32; b++, out += 32) {
            const uint8_t *blk = row + b * 34;
            float d = rk_half_to_float(q_load16(blk));
            for (int j = 0; j < 32; j++) out[j] = (float)(int8_t)blk[2 + j] * d;
        }
        break;
    default: break;
    }
}


static void dequant_rows_portable(float *dst, const void *blocks, int type, size_t row_bytes, const int32_t *map,
                                  size_t row0, size_t nrows, size_t cols) {
    for (size_t r = 0; r < nrows; r++) q_decode_portable(type, rk_mapped_row(blocks, row_bytes, map, row0 + r), 0, cols, dst + r * cols);
}

#define Q_PORTABLE_CHUNK 256
static void qgemm_portable(float *y, size_t ldy, const float *x, size_t ldx, const void *blocks, int type,
                           size_t row_bytes, const int32_t *map, size_t m, size_t n0, size_t n1, size_t k, int acc) {
    float buf[Q_PORTABLE_CHUNK];
    for (size_t n = n0; n < n1; n++) {
        const uint8_t *row = rk_mapped_row(blocks, row_bytes, map, n);
        for (size_t r0 = 0; r0 < m; r0 += 16) {
            size_t mr = m - r0 < 16 ? m - r0 : 16;
            float s[16] = {0};
            for (size_t c = 0; c < k; c += Q_PORTABLE_CHUNK) {
                size_t len = k - c < Q_PORTABLE_CHUNK ? k - c : Q_PORTABLE_CHUNK;
                q_decode_portable(type, row, c, len, buf);
                for (size_t r = 0; r < mr; r++) s[r] += rk_dot_portable(x + (r0 + r) * ldx + c, buf, len);
            }
            for (size_t r = 0; r < mr; r++) {
                float *yp = y + (r0 + r) * ldy + n;
                *yp = acc ? *yp + s[r] : s[r];
            }
        }
    }
}

// Q4_1 / Q8_0 few-row product on the portable path, factorised instead of decoded, stored and dotted:
// Σ_i x_i·(q_i·d + m) = d·Σ_i x_i·q_i + m·Σ_i x_i per block. Lane j < 16 of a block covers its columns j and
// j + 16 (Q4_1: the low and high nibbles of byte j) and adds d·(x_j·q_j + x_{j+16}·q_{j+16}) to its own
// accumulator; the loops over the lanes are element-wise, so compilers vectorise them without reassociating
// (SSE2 on any x86-64, NEON on aarch64), and a block's quants are converted once for up to 16 input rows.
// Q4_1's m·Σ_i x_i uses the input's block sums (rk_block_sums), computed once per call. Like qp_gemv_avx2
// this rounds differently from the dequantised product (terms |q·d| and |m| rather than |q·d + m|), within
// the tests' 1e-5 of Σ|x·w|.
static void qgemm_factored_portable(float *y, size_t ldy, const float *x, size_t ldx, const void *blocks, int type,
                                    size_t row_bytes, const int32_t *map, size_t m, size_t n0, size_t n1, size_t k,
                                    int acc) {
    const int q41 = type == RK_QTYPE_Q4_1;
    const size_t nb = k / 32, bb = q41 ? 20 : 34, rows = m < 16 ? m : 16;
    float *sums = q41 ? (float *)malloc(rows * nb * sizeof(float)) : NULL;  // [input row][block]
    if (q41 && !sums) { qgemm_portable(y, ldy, x, ldx, blocks, type, row_bytes, map, m, n0, n1, k, acc); return; }
    for (size_t r0 = 0; r0 < m; r0 += 16) {
        const size_t mr = m - r0 < 16 ? m - r0 : 16;
        if (q41)
            for (size_t r = 0; r < mr; r++) rk_block_sums(sums + r * nb, x + (r0 + r) * ldx, k);
        for (size_t n = n0; n < n1; n++) {
            const uint8_t *row = rk_mapped_row(blocks, row_bytes, map, n);
            float ad[16][16], am[16];  // [input row][lane]: the d terms; [input row]: the m terms
            for (size_t r = 0; r < mr; r++) {
                am[r] = 0;
                for (int j = 0; j < 16; j++) ad[r][j] = 0;
            }
            for (size_t b = 0; b < nb; b++) {
                const uint8_t *blk = row + b * bb;
                const float d = rk_half_to_float(q_load16(blk));
                float lo[16], hi[16];
                if (q41) {
                    for (int j = 0; j < 16; j++) lo[j] = (float)(blk[4 + j] & 0x0F);
                    for (int j = 0; j < 16; j++) hi[j] = (float)(blk[4 + j] >> 4);
                    const float mn = rk_half_to_float(q_load16(blk + 2));
                    for (size_t r = 0; r < mr; r++) am[r] += mn * sums[r * nb + b];
                } else {
                    for (int j = 0; j < 16; j++) lo[j] = (float)(int8_t)blk[2 + j];
                    for (int j = 0; j < 16; j++) hi[j] = (float)(int8_t)blk[18 + j];
                }
                for (size_t r = 0; r < mr; r++) {
                    const float *xb = x + (r0 + r) * ldx + b * 32;
                    for (int j = 0; j < 16; j++) ad[r][j] += d * (xb[j] * lo[j] + xb[j + 16] * hi[j]);
                }
            }
            for (size_t r = 0; r < mr; r++) {
                float t[8];
                for (int j = 0; j < 8; j++) t[j] = ad[r][j] + ad[r][j + 8];
                const float s = (((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]))) + am[r];
                float *yp = y + (r0 + r) * ldy + n;
                *yp = acc ? *yp + s : s;
            }
        }
    }
    free(sums);
}

// Transposed few-row product (inputs packed by rk_pack_rows_t16): each row decoded whole, then dotted
// with the 16-lane input columns.
static void qgemm_t16_portable(float *y, size_t ldy, const float *xt, const void *blocks, int type, size_t rb,
                               const int32_t *map, size_t m, size_t n0, size_t n1, size_t k, int acc) {
    float *row = (float *)malloc(2 * (k + 32) * sizeof(float)), *row1 = row + k + 32;
    if (!row) return;
    size_t n = n0;
    for (; n + 2 <= n1; n += 2) {  // two rows at a time (rk_t16_row2_portable)
        q_decode_portable(type, rk_mapped_row(blocks, rb, map, n), 0, k, row);
        q_decode_portable(type, rk_mapped_row(blocks, rb, map, n + 1), 0, k, row1);
        rk_t16_row2_portable(y + n, ldy, xt, row, row1, m, k, acc);
    }
    if (n < n1) {
        q_decode_portable(type, rk_mapped_row(blocks, rb, map, n), 0, k, row);
        rk_t16_row_portable(y + n, ldy, xt, row, m, k, acc);
    }
    free(row);
}

// ---------------------------------------------------------------- AVX-512
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define RK_Q_X86 1
#define RK_Q_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))

// One 32-element chunk c of a row → lo (elements 0–15) and hi (16–31). `full` = 0 only for the last,
// partial chunk of a float-typed row (masks mlo/mhi select the valid lanes; the rest become 0).
// `h`, when not NULL, holds this block's scales already converted to float (Q4_1: d, m; Q8_0: d).
RK_Q_AVX512 RK_Q_INLINE void q_dec(const int type, const uint8_t *row, size_t c, const float *h, const int full,
                                   __mmask16 mlo, __mmask16 mhi, __m512 *lo, __m512 *hi) {
    switch (type) {
    case RK_QTYPE_F32: {
        const float *p = (const float *)(const void *)row + c * 32;
        if (full) { *lo = _mm512_loadu_ps(p); *hi = _mm512_loadu_ps(p + 16); }
        else { *lo = _mm512_maskz_loadu_ps(mlo, p); *hi = _mm512_maskz_loadu_ps(mhi, p + 16); }
        break;
    }
    case RK_QTYPE_F16: {
        const uint8_t *p = row + c * 64;
        __m256i a = full ? _mm256_loadu_si256((const __m256i *)p) : _mm256_maskz_loadu_epi16(mlo, p);
        __m256i b = full ? _mm256_loadu_si256((const __m256i *)(p + 32)) : _mm256_maskz_loadu_epi16(mhi, p + 32);
        *lo = _mm512_cvtph_ps(a);
        *hi = _mm512_cvtph_ps(b);
        break;
    }
    case RK_QTYPE_BF16: {
        const uint8_t *p = row + c * 64;
        __m256i a = full ? _mm256_loadu_si256((const __m256i *)p) : _mm256_maskz_loadu_epi16(mlo, p);
        __m256i b = full ? _mm256_loadu_si256((const __m256i *)(p + 32)) : _mm256_maskz_loadu_epi16(mhi, p + 32);
        *lo = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(a), 16));
        *hi = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16));
        break;
    }
    case RK_QTYPE_Q4_1: {
        const uint8_t *blk = row + c * 20;
        __m512 d, m;
        if (h) {
            d = _mm512_set1_ps(h[0]);
            m = _mm512_set1_ps(h[1]);
        } else {
            uint32_t hm;
            memcpy(&hm, blk, 4);
            __m512 dm = _mm512_cvtph_ps(_mm256_set1_epi32((int)hm));  // d, m, d, m, …
            d = _mm512_moveldup_ps(dm);
            m = _mm512_movehdup_ps(dm);
        }
        const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        // q·d is exact in fp32 (4-bit × 11-bit significands), so the FMA rounds once, like mul-then-add.
        __m512 tbl = _mm512_fmadd_ps(iota, d, m);
        __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 4)));
        *lo = _mm512_permutexvar_ps(q, tbl);                          // index = low 4 bits = low nibble
        *hi = _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), tbl);
        break;
    }
    case RK_QTYPE_Q8_0: {
        const uint8_t *blk = row + c * 34;
        __m512 d;
        if (h) {
            d = _mm512_set1_ps(h[0]);
        } else {
            uint16_t hd;
            memcpy(&hd, blk, 2);
            d = _mm512_cvtph_ps(_mm256_set1_epi16((short)hd));
        }
        *lo = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2)))), d);
        *hi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18)))), d);
        break;
    }
    default: *lo = *hi = _mm512_setzero_ps(); break;
    }
}

RK_Q_INLINE __mmask16 q_mask(size_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }

// Converts the fp16 (d, m) of Q4_1 blocks c0 … c0 + count − 1 (count ≤ 4) of a row to floats out[2j], out[2j + 1].
// They are dwords 0, 5, 10, 15 of the 64 bytes from block c0, so one load, one permute and one conversion
// replace 4 per-block conversions and broadcasts; the block loop then reads them as broadcast loads.
RK_Q_AVX512 RK_Q_INLINE void q41_scales4(const uint8_t *row, size_t c0, size_t count, float *out) {
    static const uint16_t lanes[5] = {0, 0x0001, 0x0021, 0x0421, 0x8421};
    __m512i v = _mm512_maskz_loadu_epi32((__mmask16)lanes[count], row + c0 * 20);
    __m512i p = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 5, 10, 15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), v);
    _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm512_castsi512_si128(p)));
}

// Decodes a whole row (k elements; Q types: k a multiple of 32) to out.
RK_Q_AVX512 RK_Q_INLINE void q_dec_row(const int type, const uint8_t *row, size_t k, float *out) {
    size_t nc = k / 32, rem = k % 32;
    for (size_t c = 0; c < nc; c++) {
        __m512 lo, hi;
        q_dec(type, row, c, NULL, 1, 0, 0, &lo, &hi);
        _mm512_storeu_ps(out + c * 32, lo);
        _mm512_storeu_ps(out + c * 32 + 16, hi);
    }
    if (rem && type != RK_QTYPE_Q4_1 && type != RK_QTYPE_Q8_0) {
        __mmask16 mlo = q_mask(rem), mhi = q_mask(rem > 16 ? rem - 16 : 0);
        __m512 lo, hi;
        q_dec(type, row, nc, NULL, 0, mlo, mhi, &lo, &hi);
        _mm512_mask_storeu_ps(out + nc * 32, mlo, lo);
        _mm512_mask_storeu_ps(out + nc * 32 + 16, mhi, hi);
    }
}

// y[j, i] (+)= Σ_k x[j, k] · w_i[k] for MR input rows j and 4 weight rows i (w[i] decoded in registers);
// only the first nr columns are stored. MR ≤ 2 keeps separate accumulators for the two chunk halves
// so 8 FMA chains hide the FMA latency.
RK_Q_AVX512 RK_Q_INLINE void q_tile(const int type, const int MR, float *y, size_t ldy, const float *x, size_t ldx,
                                    const uint8_t *const *w, const uint8_t *const *pf, int nr, size_t k, int acc) {
    const int split = MR <= 2;
    const size_t cb = type == RK_QTYPE_Q4_1 ? 20 : type == RK_QTYPE_Q8_0 ? 34 : type == RK_QTYPE_F32 ? 128 : 64;
    __m512 a[4][4], b[4][4];
    for (int j = 0; j < MR; j++)
        for (int i = 0; i < 4; i++) { a[j][i] = _mm512_setzero_ps(); b[j][i] = _mm512_setzero_ps(); }
    const int qtype = type == RK_QTYPE_Q4_1 || type == RK_QTYPE_Q8_0;
    size_t nc = k / 32, rem = qtype ? 0 : k % 32;
    float hdr[4][8];
#define Q_TILE_CHUNK(c, h_of_i)                                                                    \
    do {                                                                                           \
        __m512 xl[4], xh[4];                                                                       \
        for (int j = 0; j < MR; j++) {                                                             \
            xl[j] = _mm512_loadu_ps(x + j * ldx + (c) * 32);                                       \
            xh[j] = _mm512_loadu_ps(x + j * ldx + (c) * 32 + 16);                                  \
        }                                                                                          \
        for (int i = 0; i < 4; i++) {                                                              \
            __m512 wl, wh;                                                                         \
            if (pf) {                                                                              \
                if (type == RK_QTYPE_Q4_1) _mm_prefetch((const char *)pf[i] + (c) * cb, _MM_HINT_T0);  \
                else _mm_prefetch((const char *)pf[i] + (c) * cb, _MM_HINT_T1);                    \
            }                                                                                      \
            q_dec(type, w[i], (c), (h_of_i), 1, 0, 0, &wl, &wh);                                   \
            for (int j = 0; j < MR; j++) {                                                         \
                a[j][i] = _mm512_fmadd_ps(xl[j], wl, a[j][i]);                                     \
                if (split) b[j][i] = _mm512_fmadd_ps(xh[j], wh, b[j][i]);                          \
                else a[j][i] = _mm512_fmadd_ps(xh[j], wh, a[j][i]);                                \
            }                                                                                      \
        }                                                                                          \
    } while (0)
    if (type == RK_QTYPE_Q4_1) {
        // Groups of 4 blocks share one scale conversion per row (q41_scales4).
        size_t c4 = 0;
        for (; c4 + 4 <= nc; c4 += 4) {
            for (int i = 0; i < 4; i++) q41_scales4(w[i], c4, 4, hdr[i]);
            for (size_t cc = 0; cc < 4; cc++) Q_TILE_CHUNK(c4 + cc, hdr[i] + 2 * cc);
        }
        if (c4 < nc) {
            for (int i = 0; i < 4; i++) q41_scales4(w[i], c4, nc - c4, hdr[i]);
            for (size_t cc = 0; c4 + cc < nc; cc++) Q_TILE_CHUNK(c4 + cc, hdr[i] + 2 * cc);
        }
    } else {
        for (size_t c = 0; c < nc; c++) Q_TILE_CHUNK(c, NULL);
    }
#undef Q_TILE_CHUNK
    if (rem) {
        __mmask16 mlo = q_mask(rem), mhi = q_mask(rem > 16 ? rem - 16 : 0);
        __m512 xl[4], xh[4];
        for (int j = 0; j < MR; j++) {
            xl[j] = _mm512_maskz_loadu_ps(mlo, x + j * ldx + nc * 32);
            xh[j] = _mm512_maskz_loadu_ps(mhi, x + j * ldx + nc * 32 + 16);
        }
        for (int i = 0; i < 4; i++) {
            __m512 wl, wh;
            q_dec(type, w[i], nc, NULL, 0, mlo, mhi, &wl, &wh);
            for (int j = 0; j < MR; j++) {
                a[j][i] = _mm512_fmadd_ps(xl[j], wl, a[j][i]);
                if (split) b[j][i] = _mm512_fmadd_ps(xh[j], wh, b[j][i]);
                else a[j][i] = _mm512_fmadd_ps(xh[j], wh, a[j][i]);
            }
        }
    }
    for (int j = 0; j < MR; j++) {
        float *yr = y + j * ldy;
        for (int i = 0; i < 4; i++) {
            if (i >= nr) break;
            float s = _mm512_reduce_add_ps(split ? _mm512_add_ps(a[j][i], b[j][i]) : a[j][i]);
            yr[i] = acc ? yr[i] + s : s;
        }
    }
}

RK_Q_AVX512 RK_Q_INLINE void q_tile_m(const int type, size_t mr, float *y, size_t ldy, const float *x, size_t ldx,
                                      const uint8_t *const *w, const uint8_t *const *pf, int nr, size_t k, int acc) {
    switch (mr) {
    case 1: q_tile(type, 1, y, ldy, x, ldx, w, pf, nr, k, acc); break;
    case 2: q_tile(type, 2, y, ldy, x, ldx, w, pf, nr, k, acc); break;
    case 3: q_tile(type, 3, y, ldy, x, ldx, w, pf, nr, k, acc); break;
    default: q_tile(type, 4, y, ldy, x, ldx, w, pf, nr, k, acc); break;
    }
}

// Scratch for the M > 4 path: 4 decoded rows, per thread, grown on demand (never freed: a few KB per thread).
static _Thread_local float *q_scratch = NULL;
static _Thread_local size_t q_scratch_cap = 0;
static float *q_get_scratch(size_t floats) {
    if (floats > q_scratch_cap) {
        free(q_scratch);
        size_t bytes = (floats * sizeof(float) + 63) & ~(size_t)63;
        q_scratch = (float *)aligned_alloc(64, bytes);
        q_scratch_cap = q_scratch ? floats : 0;
    }
    return q_scratch;
}

// Software prefetch of the rows `Q_PREFETCH_TILES(type)` tiles ahead, block by block in step with the
// decoding. Measured from DRAM on one core (1 × 49152 × 576): Q8_0 streams at 17 GB/s with prefetches
// into L2 (_MM_HINT_T1) against 9 GB/s into L1 (T0), at any distance from 2 to 8 tiles (presumably the
// L1's outstanding misses are the limit); Q4_1, bound by its decoding at ~10 GB/s per core, does ~4 %
// better with T0, 2 tiles ahead.
#define Q_PREFETCH_TILES(type) ((type) == RK_QTYPE_Q4_1 ? 2 : 4)

RK_Q_AVX512 RK_Q_INLINE void q_gemm_type(const int type, float *y, size_t ldy, const float *x, size_t ldx,
                                         const void *blocks, size_t rb, const int32_t *map, size_t m, size_t n0,
                                         size_t n1, size_t k, int acc) {
    size_t kp = (k + 31) & ~(size_t)31;
    float *scr = NULL;
    if (m > 4) {
        scr = q_get_scratch(4 * kp);
        if (!scr) { qgemm_portable(y, ldy, x, ldx, blocks, type, rb, map, m, n0, n1, k, acc); return; }
    }
    for (size_t n = n0; n < n1; n += 4) {
        int nr = n1 - n < 4 ? (int)(n1 - n) : 4;
        const uint8_t *w[4];
        for (int i = 0; i < 4; i++) w[i] = rk_mapped_row(blocks, rb, map, n + (size_t)(i < nr ? i : nr - 1));
        size_t pn = n + 4 * Q_PREFETCH_TILES(type);
        const uint8_t *pf[4];
        for (size_t i = 0; i < 4; i++) pf[i] = rk_mapped_row(blocks, rb, map, pn + i < n1 ? pn + i : n1 - 1);
        if (m <= 4) {
            q_tile_m(type, m, y + n, ldy, x, ldx, w, pf, nr, k, acc);
        } else {
            for (int i = 0; i < 4; i++) q_dec_row(type, w[i], k, scr + (size_t)i * kp);
            const uint8_t *sw[4];
            for (int i = 0; i < 4; i++) sw[i] = (const uint8_t *)(scr + (size_t)i * kp);
            for (size_t r = 0; r < m; r += 4) {
                size_t mr = m - r < 4 ? m - r : 4;
                q_tile_m(RK_QTYPE_F32, mr, y + r * ldy + n, ldy, x + r * ldx, ldx, sw, NULL, nr, k, acc);
            }
        }
    }
}

RK_Q_AVX512 static void qgemm_avx512(float *y, size_t ldy, const float *x, size_t ldx, const void *blocks, int type,
                                     size_t rb, const int32_t *map, size_t m, size_t n0, size_t n1, size_t k, int acc) {
    RK_Q_FOR_TYPE(type, q_gemm_type, y, ldy, x, ldx, blocks, rb, map, m, n0, n1, k, acc);
}

// Tiles of RK_T16_NR weight rows: each 128-column chunk of the tile's rows is decoded into an L1 buffer
// and consumed by the fp32 register tile; the next tile's blocks are prefetched as this one decodes.
RK_Q_AVX512 RK_Q_INLINE void q_gemm_t16_type(const int type, float *y, size_t ldy, const float *xt, const void *blocks,
                                             size_t rb, const int32_t *map, size_t m, size_t n0, size_t n1, size_t k,
                                             int acc) {
    enum { KC = 128 };
    float buf[RK_T16_NR * KC] __attribute__((aligned(64)));
    const size_t cb = type == RK_QTYPE_Q4_1 ? 20 : type == RK_QTYPE_Q8_0 ? 34 : type == RK_QTYPE_F32 ? 128 : 64;
    for (size_t n = n0; n < n1; n += RK_T16_NR) {
        const uint8_t *w[RK_T16_NR], *pf[RK_T16_NR];
        int nr = rk_t16_tile_rows(w, pf, blocks, rb, map, n, n1);
        __m512 a[RK_T16_NR];
        for (int j = 0; j < RK_T16_NR; j++) a[j] = _mm512_setzero_ps();
        for (size_t c0 = 0; c0 < k; c0 += KC) {
            size_t kc = k - c0 < KC ? k - c0 : KC, full = kc / 32, rem = kc % 32;
            for (int j = 0; j < RK_T16_NR; j++) {
                float *out = buf + j * KC;
                for (size_t cc = 0; cc < full; cc++) {
                    __m512 lo, hi;
                    _mm_prefetch((const char *)pf[j] + (c0 / 32 + cc) * cb, _MM_HINT_T1);
                    q_dec(type, w[j], c0 / 32 + cc, NULL, 1, 0, 0, &lo, &hi);
                    _mm512_store_ps(out + cc * 32, lo);
                    _mm512_store_ps(out + cc * 32 + 16, hi);
                }
                if (rem) {
                    __mmask16 mlo = q_mask(rem), mhi = q_mask(rem > 16 ? rem - 16 : 0);
                    __m512 lo, hi;
                    q_dec(type, w[j], c0 / 32 + full, NULL, 0, mlo, mhi, &lo, &hi);
                    _mm512_store_ps(out + full * 32, lo);
                    _mm512_store_ps(out + full * 32 + 16, hi);
                }
            }
            rk_t16_tile_12(a, xt + c0 * 16, buf, KC, kc, NULL);
        }
        rk_t16_store(y + n, ldy, a, nr, m, acc);
    }
}

RK_Q_AVX512 static void qgemm_t16_avx512(float *y, size_t ldy, const float *xt, const void *blocks, int type, size_t rb,
                                         const int32_t *map, size_t m, size_t n0, size_t n1, size_t k, int acc) {
    RK_Q_FOR_TYPE(type, q_gemm_t16_type, y, ldy, xt, blocks, rb, map, m, n0, n1, k, acc);
}

RK_Q_AVX512 static void dequant_rows_avx512(float *dst, const void *blocks, int type, size_t rb, const int32_t *map,
                                            size_t row0, size_t nrows, size_t cols) {
    for (size_t r = 0; r < nrows; r++) {
        const uint8_t *row = rk_mapped_row(blocks, rb, map, row0 + r);
        float *out = dst + r * cols;
        if (type == RK_QTYPE_F32) memcpy(out, row, cols * sizeof(float));
        else RK_Q_FOR_TYPE(type, q_dec_row, row, cols, out);
    }
}

// ---------------------------------------------------------------- AVX2 + FMA + F16C
// The same tiles on 8-lane vectors: a 32-element chunk decodes to 4 ymm. Q4_1 converts the nibbles to
// floats (no 16-entry permute in AVX2): the chunk's 16 bytes widen to two groups of 8 dwords; low nibble
// = dword & 15, high nibble = dword >> 4, then fma(q, d, m), which rounds as the reference q·d + m (q·d
// is exact). Tiles of 4 weight rows × MR ≤ 2 input rows keep 8 accumulators, the 4 decoded vectors and
// the scales in the 16 registers; further input rows decode the tile once into scratch (as AVX-512 does
// above 4 rows).
#define RK_Q_AVX2 __attribute__((target("avx2,fma,f16c")))

// Chunk c of a row → o[0..3] = elements 0–7, 8–15, 16–23, 24–31 (whole chunks only; tails: q_dec2_tail).
// `h`, when not NULL, holds this block's scales already converted (Q4_1: d, m; Q8_0: d).
RK_Q_AVX2 RK_Q_INLINE void q_dec2(const int type, const uint8_t *row, size_t c, const float *h, __m256 *o) {
    switch (type) {
    case RK_QTYPE_F32: {
        const float *p = (const float *)(const void *)row + c * 32;
        for (int i = 0; i < 4; i++) o[i] = _mm256_loadu_ps(p + 8 * i);
        break;
    }
    case RK_QTYPE_F16: {
        const uint8_t *p = row + c * 64;
        for (int i = 0; i < 4; i++) o[i] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16 * i)));
        break;
    }
    case RK_QTYPE_BF16: {
        const uint8_t *p = row + c * 64;
        for (int i = 0; i < 4; i++)
            o[i] = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + 16 * i))), 16));
        break;
    }
    case RK_QTYPE_Q4_1: {
        const uint8_t *blk = row + c * 20;
        __m256 d, m;
        if (h) {
            d = _mm256_broadcast_ss(h);
            m = _mm256_broadcast_ss(h + 1);
        } else {
            uint32_t hm;
            memcpy(&hm, blk, 4);
            __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128((int)hm));
            d = _mm256_broadcastss_ps(dm);
            m = _mm256_broadcastss_ps(_mm_movehdup_ps(dm));
        }
        const __m256i low = _mm256_set1_epi32(0xF);
        __m256i r0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 4)));
        __m256i r1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 12)));
        o[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(r0, low)), d, m);
        o[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(r1, low)), d, m);
        o[2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(r0, 4)), d, m);
        o[3] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(r1, 4)), d, m);
        break;
    }
    case RK_QTYPE_Q8_0: {
        const uint8_t *blk = row + c * 34;
        __m256 d;
        if (h) {
            d = _mm256_broadcast_ss(h);
        } else {
            uint16_t hd;
            memcpy(&hd, blk, 2);
            d = _mm256_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(hd)));
        }
        for (int i = 0; i < 4; i++)
            o[i] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 2 + 8 * i)))), d);
        break;
    }
    default: for (int i = 0; i < 4; i++) o[i] = _mm256_setzero_ps(); break;
    }
}

// The last, partial chunk (rem < 32 elements) of a float-typed row, zero beyond rem.
RK_Q_AVX2 RK_Q_INLINE void q_dec2_tail(const int type, const uint8_t *row, size_t c, size_t rem, __m256 *o) {
    float t[32] __attribute__((aligned(32))) = {0};
    q_decode_portable(type, row, c * 32, rem, t);
    for (int i = 0; i < 4; i++) o[i] = _mm256_load_ps(t + 8 * i);
}

// The fp16 (d, m) of Q4_1 blocks c0 … c0 + count − 1 (count ≤ 4) of a row as floats out[2j], out[2j + 1].
RK_Q_AVX2 RK_Q_INLINE void q41_scales4_avx2(const uint8_t *row, size_t c0, size_t count, float *out) {
    uint32_t v[4] = {0, 0, 0, 0};
    for (size_t j = 0; j < count; j++) memcpy(v + j, row + (c0 + j) * 20, 4);
    _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)v)));
}

// y[j, i] (+)= Σ_k x[j, k] · w_i[k] for MR ≤ 2 input rows j and 4 weight rows i; only the first nr columns
// are stored. MR = 1 splits each accumulator in two so 8 FMA chains hide the FMA latency.
RK_Q_AVX2 RK_Q_INLINE void q_tile2(const int type, const int MR, float *y, size_t ldy, const float *x, size_t ldx,
                                   const uint8_t *const *w, const uint8_t *const *pf, int nr, size_t k, int acc) {
    const int split = MR == 1;
    const size_t cb = type == RK_QTYPE_Q4_1 ? 20 : type == RK_QTYPE_Q8_0 ? 34 : type == RK_QTYPE_F32 ? 128 : 64;
    __m256 a[2][4], b[2][4];
    for (int j = 0; j < MR; j++)
        for (int i = 0; i < 4; i++) { a[j][i] = _mm256_setzero_ps(); b[j][i] = _mm256_setzero_ps(); }
    const int qtype = type == RK_QTYPE_Q4_1 || type == RK_QTYPE_Q8_0;
    size_t nc = k / 32, rem = qtype ? 0 : k % 32;
    float hdr[4][8];
#define Q_TILE2_FMAS(c, wv)                                                                        \
    for (int j = 0; j < MR; j++) {                                                                 \
        const float *xc = x + j * ldx + (c) * 32;                                                  \
        a[j][i] = _mm256_fmadd_ps(_mm256_loadu_ps(xc), wv[0], a[j][i]);                            \
        if (split) b[j][i] = _mm256_fmadd_ps(_mm256_loadu_ps(xc + 8), wv[1], b[j][i]);             \
        else a[j][i] = _mm256_fmadd_ps(_mm256_loadu_ps(xc + 8), wv[1], a[j][i]);                   \
        a[j][i] = _mm256_fmadd_ps(_mm256_loadu_ps(xc + 16), wv[2], a[j][i]);                       \
        if (split) b[j][i] = _mm256_fmadd_ps(_mm256_loadu_ps(xc + 24), wv[3], b[j][i]);            \
        else a[j][i] = _mm256_fmadd_ps(_mm256_loadu_ps(xc + 24), wv[3], a[j][i]);                  \
    }
#define Q_TILE2_CHUNK(c, h_of_i)                                                                   \
    do {                                                                                           \
        for (int i = 0; i < 4; i++) {                                                              \
            __m256 wv[4];                                                                          \
            if (pf) {                                                                              \
                if (type == RK_QTYPE_Q4_1) _mm_prefetch((const char *)pf[i] + (c) * cb, _MM_HINT_T0);  \
                else _mm_prefetch((const char *)pf[i] + (c) * cb, _MM_HINT_T1);                    \
            }                                                                                      \
            q_dec2(type, w[i], (c), (h_of_i), wv);                                                 \
            Q_TILE2_FMAS(c, wv)                                                                    \
        }                                                                                          \
    } while (0)
    if (type == RK_QTYPE_Q4_1) {
        size_t c4 = 0;
        for (; c4 < nc; c4 += 4) {
            size_t count = nc - c4 < 4 ? nc - c4 : 4;
            for (int i = 0; i < 4; i++) q41_scales4_avx2(w[i], c4, count, hdr[i]);
            for (size_t cc = 0; cc < count; cc++) Q_TILE2_CHUNK(c4 + cc, hdr[i] + 2 * cc);
        }
    } else {
        for (size_t c = 0; c < nc; c++) Q_TILE2_CHUNK(c, NULL);
    }
    if (rem) {
        float xt[2][32] __attribute__((aligned(32)));
        for (int j = 0; j < MR; j++) {
            memset(xt[j], 0, sizeof xt[j]);
            memcpy(xt[j], x + j * ldx + nc * 32, rem * sizeof(float));
        }
        for (int i = 0; i < 4; i++) {
            __m256 wv[4];
            q_dec2_tail(type, w[i], nc, rem, wv);
            for (int j = 0; j < MR; j++)
                for (int t = 0; t < 4; t++) a[j][i] = _mm256_fmadd_ps(_mm256_load_ps(xt[j] + 8 * t), wv[t], a[j][i]);
        }
    }
#undef Q_TILE2_CHUNK
#undef Q_TILE2_FMAS
    for (int j = 0; j < MR; j++) {
        float *yr = y + j * ldy;
        for (int i = 0; i < nr; i++) {
            __m256 v = split ? _mm256_add_ps(a[j][i], b[j][i]) : a[j][i];
            __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
            float s = _mm_cvtss_f32(_mm_add_ss(s4, _mm_movehdup_ps(s4)));
            yr[i] = acc ? yr[i] + s : s;
        }
    }
}

// One input row: weight rows one after another (one sequential stream, as the fp32 gemv), each chunk
// decoded and consumed at once by 8 accumulators (two chunks in flight, so the FMA chains are not the
// limit); the row 4 ahead is prefetched. Keeping one row's decoding in registers avoids the spills of a
// 4-row tile with 16 ymm registers. Measured on Zen 3, L2-resident: ~9.7 cycles per 32 Q4_1 weights, ~2.6 of
// them converting and broadcasting the fp16 scales.
RK_Q_AVX2 RK_Q_INLINE void q_gemv_type2(const int type, float *y, const float *x, const void *blocks, size_t rb,
                                        const int32_t *map, size_t n0, size_t n1, size_t k, int acc) {
    const size_t cb = type == RK_QTYPE_Q4_1 ? 20 : type == RK_QTYPE_Q8_0 ? 34 : type == RK_QTYPE_F32 ? 128 : 64;
    const int qtype = type == RK_QTYPE_Q4_1 || type == RK_QTYPE_Q8_0;
    const size_t nc = k / 32, rem = qtype ? 0 : k % 32;
    for (size_t n = n0; n < n1; n++) {
        const uint8_t *w = rk_mapped_row(blocks, rb, map, n);
        const uint8_t *pf = rk_mapped_row(blocks, rb, map, n + 4 < n1 ? n + 4 : n1 - 1);
        __m256 a[8];
        for (int t = 0; t < 8; t++) a[t] = _mm256_setzero_ps();
        float hdr[8];
#define Q_GEMV2_CHUNK(c, h, par)                                                                   \
        do {                                                                                       \
            __m256 wv[4];                                                                          \
            q_dec2(type, w, (c), (h), wv);                                                         \
            for (int t = 0; t < 4; t++)                                                            \
                a[4 * (par) + t] = _mm256_fmadd_ps(_mm256_loadu_ps(x + (c) * 32 + 8 * t), wv[t], a[4 * (par) + t]); \
        } while (0)
        for (size_t c = 0; c < nc; c += 4) {
            size_t count = nc - c < 4 ? nc - c : 4;
            _mm_prefetch((const char *)pf + c * cb, _MM_HINT_T0);
            if (cb * 4 > 64) _mm_prefetch((const char *)pf + c * cb + 64, _MM_HINT_T0);
            if (cb * 4 > 128) { _mm_prefetch((const char *)pf + c * cb + 128, _MM_HINT_T0); _mm_prefetch((const char *)pf + c * cb + 192, _MM_HINT_T0); }
            if (type == RK_QTYPE_Q4_1) q41_scales4_avx2(w, c, count, hdr);
            for (size_t cc = 0; cc < count; cc++) {
                const float *h = type == RK_QTYPE_Q4_1 ? hdr + 2 * cc : NULL;
                if (cc & 1) Q_GEMV2_CHUNK(c + cc, h, 1);
                else Q_GEMV2_CHUNK(c + cc, h, 0);
            }
        }
#undef Q_GEMV2_CHUNK
        if (rem) {
            float xt[32] __attribute__((aligned(32))) = {0};
            memcpy(xt, x + nc * 32, rem * sizeof(float));
            __m256 wv[4];
            q_dec2_tail(type, w, nc, rem, wv);
            for (int t = 0; t < 4; t++) a[t] = _mm256_fmadd_ps(_mm256_load_ps(xt + 8 * t), wv[t], a[t]);
        }
        __m256 v = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a[0], a[4]), _mm256_add_ps(a[1], a[5])),
                                 _mm256_add_ps(_mm256_add_ps(a[2], a[6]), _mm256_add_ps(a[3], a[7])));
        __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        float s = _mm_cvtss_f32(_mm_add_ss(s4, _mm_movehdup_ps(s4)));
        y[n] = acc ? y[n] + s : s;
    }
}

// Decodes a whole row (k elements; Q types: k a multiple of 32) to out.
RK_Q_AVX2 RK_Q_INLINE void q_dec_row2(const int type, const uint8_t *row, size_t k, float *out) {
    size_t nc = k / 32, rem = k % 32;
    for (size_t c = 0; c < nc; c++) {
        __m256 o[4];
        q_dec2(type, row, c, NULL, o);
        for (int i = 0; i < 4; i++) _mm256_storeu_ps(out + c * 32 + 8 * i, o[i]);
    }
    if (rem && type != RK_QTYPE_Q4_1 && type != RK_QTYPE_Q8_0) q_decode_portable(type, row, nc * 32, rem, out + nc * 32);
}

RK_Q_AVX2 RK_Q_INLINE void q_gemm_type2(const int type, float *y, size_t ldy, const float *x, size_t ldx,
                                        const void *blocks, size_t rb, const int32_t *map, size_t m, size_t n0,
                                        size_t n1, size_t k, int acc) {
    if (m == 1) { q_gemv_type2(type, y, x, blocks, rb, map, n0, n1, k, acc); return; }
    size_t kp = (k + 31) & ~(size_t)31;
    float *scr = NULL;
    if (m > 2) {
        scr = q_get_scratch(4 * kp);
        if (!scr) { qgemm_portable(y, ldy, x, ldx, blocks, type, rb, map, m, n0, n1, k, acc); return; }
    }
    for (size_t n = n0; n < n1; n += 4) {
        int nr = n1 - n < 4 ? (int)(n1 - n) : 4;
        const uint8_t *w[4];
        for (int i = 0; i < 4; i++) w[i] = rk_mapped_row(blocks, rb, map, n + (size_t)(i < nr ? i : nr - 1));
        size_t pn = n + 4 * Q_PREFETCH_TILES(type);
        const uint8_t *pf[4];
        for (size_t i = 0; i < 4; i++) pf[i] = rk_mapped_row(blocks, rb, map, pn + i < n1 ? pn + i : n1 - 1);
        if (m == 1) {
            q_tile2(type, 1, y + n, ldy, x, ldx, w, pf, nr, k, acc);
        } else if (m == 2) {
            q_tile2(type, 2, y + n, ldy, x, ldx, w, pf, nr, k, acc);
        } else {
            for (int i = 0; i < 4; i++) q_dec_row2(type, w[i], k, scr + (size_t)i * kp);
            const uint8_t *sw[4];
            for (int i = 0; i < 4; i++) sw[i] = (const uint8_t *)(scr + (size_t)i * kp);
            size_t r = 0;
            for (; r + 2 <= m; r += 2) q_tile2(RK_QTYPE_F32, 2, y + r * ldy + n, ldy, x + r * ldx, ldx, sw, NULL, nr, k, acc);
            if (r < m) q_tile2(RK_QTYPE_F32, 1, y + r * ldy + n, ldy, x + r * ldx, ldx, sw, NULL, nr, k, acc);
        }
    }
}

RK_Q_AVX2 static void qgemm_avx2(float *y, size_t ldy, const float *x, size_t ldx, const void *blocks, int type,
                                 size_t rb, const int32_t *map, size_t m, size_t n0, size_t n1, size_t k, int acc) {
    RK_Q_FOR_TYPE(type, q_gemm_type2, y, ldy, x, ldx, blocks, rb, map, m, n0, n1, k, acc);
}

// Tiles of RK_T16_NR weight rows decoded 128 columns at a time into an L1 buffer, then the AVX2 register
// tiles (two of 6 rows) over it; the next tile's blocks are prefetched as this one decodes.
RK_Q_AVX2 RK_Q_INLINE void q_gemm_t16_type2(const int type, float *y, size_t ldy, const float *xt, const void *blocks,
                                            size_t rb, const int32_t *map, size_t m, size_t n0, size_t n1, size_t k,
                                            int acc) {
    enum { KC = 128 };
    float buf[RK_T16_NR * KC] __attribute__((aligned(32)));
    const size_t cb = type == RK_QTYPE_Q4_1 ? 20 : type == RK_QTYPE_Q8_0 ? 34 : type == RK_QTYPE_F32 ? 128 : 64;
    for (size_t n = n0; n < n1; n += RK_T16_NR) {
        const uint8_t *w[RK_T16_NR], *pf[RK_T16_NR];
        int nr = rk_t16_tile_rows(w, pf, blocks, rb, map, n, n1);
        __m256 a[2 * RK_T16_NR];
        for (int j = 0; j < 2 * RK_T16_NR; j++) a[j] = _mm256_setzero_ps();
        for (size_t c0 = 0; c0 < k; c0 += KC) {
            size_t kc = k - c0 < KC ? k - c0 : KC, full = kc / 32, rem = kc % 32;
            for (int j = 0; j < RK_T16_NR; j++) {
                float *out = buf + j * KC;
                for (size_t cc = 0; cc < full; cc++) {
                    __m256 o[4];
                    _mm_prefetch((const char *)pf[j] + (c0 / 32 + cc) * cb, _MM_HINT_T1);
                    q_dec2(type, w[j], c0 / 32 + cc, NULL, o);
                    for (int i = 0; i < 4; i++) _mm256_store_ps(out + cc * 32 + 8 * i, o[i]);
                }
                if (rem) {
                    __m256 o[4];
                    q_dec2_tail(type, w[j], c0 / 32 + full, rem, o);
                    for (int i = 0; i < 4; i++) _mm256_store_ps(out + full * 32 + 8 * i, o[i]);
                }
            }
            rk_t16v2_tile_6(a, xt + c0 * 16, buf, KC, kc, NULL);
            rk_t16v2_tile_6(a + 12, xt + c0 * 16, buf + 6 * KC, KC, kc, NULL);
        }
        rk_t16v2_store(y + n, ldy, a, nr, m, acc);
    }
}

RK_Q_AVX2 static void qgemm_t16_avx2(float *y, size_t ldy, const float *xt, const void *blocks, int type, size_t rb,
                                     const int32_t *map, size_t m, size_t n0, size_t n1, size_t k, int acc) {
    RK_Q_FOR_TYPE(type, q_gemm_t16_type2, y, ldy, xt, blocks, rb, map, m, n0, n1, k, acc);
}

RK_Q_AVX2 static void dequant_rows_avx2(float *dst, const void *blocks, int type, size_t rb, const int32_t *map,
                                        size_t row0, size_t nrows, size_t cols) {
    for (size_t r = 0; r < nrows; r++) {
        const uint8_t *row = rk_mapped_row(blocks, rb, map, row0 + r);
        float *out = dst + r * cols;
        if (type == RK_QTYPE_F32) memcpy(out, row, cols * sizeof(float));
        else RK_Q_FOR_TYPE(type, q_dec_row2, row, cols, out);
    }
}
#else
#define RK_Q_X86 0
#endif

// ---------------------------------------------------------------- entry points
void rk_dequant_rows(float *dst, const void *blocks, int type, size_t row_bytes, const int32_t *row_map,
                     size_t row0, size_t nrows, size_t cols) {
    if (!q_supported(type)) return;
#if RK_Q_X86
    switch (rk_path()) {
    case RK_PATH_AVX512: dequant_rows_avx512(dst, blocks, type, row_bytes, row_map, row0, nrows, cols); return;
    case RK_PATH_AVX2: dequant_rows_avx2(dst, blocks, type, row_bytes, row_map, row0, nrows, cols); return;
    default: break;
    }
#endif
    dequant_rows_portable(dst, blocks, type, row_bytes, row_map, row0, nrows, cols);
}

void rk_qgemm_few_rows_nt(float *y, size_t ldy, const float *x, size_t ldx, const void *blocks, int type,
                          size_t row_bytes, const int32_t *row_map, size_t m, size_t n0, size_t n1, size_t k,
                          int accumulate) {
    if (!q_supported(type) || m == 0 || n0 >= n1) return;
#if RK_Q_X86
    switch (rk_path()) {
    case RK_PATH_AVX512: qgemm_avx512(y, ldy, x, ldx, blocks, type, row_bytes, row_map, m, n0, n1, k, accumulate); return;
    case RK_PATH_AVX2: qgemm_avx2(y, ldy, x, ldx, blocks, type, row_bytes, row_map, m, n0, n1, k, accumulate); return;
    default: break;
    }
#endif
    if (type == RK_QTYPE_Q4_1 || type == RK_QTYPE_Q8_0) {
        qgemm_factored_portable(y, ldy, x, ldx, blocks, type, row_bytes, row_map, m, n0, n1, k, accumulate);
        return;
    }
    qgemm_portable(y, ldy, x, ldx, blocks, type, row_bytes, row_map, m, n0, n1, k, accumulate);
}

void rk_qgemm_few_rows_t16(float *y, size_t ldy, const float *xt, const void *blocks, int type, size_t row_bytes,
                           const int32_t *row_map, size_t m, size_t n0, size_t n1, size_t k, int accumulate) {
    if (!q_supported(type) || m == 0 || n0 >= n1) return;
#if RK_Q_X86
    switch (rk_path()) {
    case RK_PATH_AVX512: qgemm_t16_avx512(y, ldy, xt, blocks, type, row_bytes, row_map, m, n0, n1, k, accumulate); return;
    case RK_PATH_AVX2: qgemm_t16_avx2(y, ldy, xt, blocks, type, row_bytes, row_map, m, n0, n1, k, accumulate); return;
    default: break;
    }
#endif
    qgemm_t16_portable(y, ldy, xt, blocks, type, row_bytes, row_map, m, n0, n1, k, accumulate);
}
