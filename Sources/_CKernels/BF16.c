// bf16 products: BF16 weights multiplied by inputs rounded to bf16, products summed in fp32 — what
// llama.cpp does with BF16 weights and torch with bf16 matmuls. Zen 4's AVX512_BF16 `vdpbf16ps` does 32
// multiply-adds per instruction (2× the fp32 FMA rate, perf.md: 460 GFLOP/s measured) and reads half the
// bytes of fp32 weights, which is what batched decoding needs (compute-bound at 12–16 rows).
//
// Rounding is round-to-nearest-even with denormals flushed to ±0 and NaN kept (quietened), exactly as
// `vcvtneps2bf16` does, so the portable and AVX-512 paths give the same bf16 values. bf16 × bf16 products
// are exact in fp32 (8 + 8 significant bits), so every path computes the same terms and differs only in
// summation order (and vdpbf16ps flushes denormal sums to zero).
#include "CKernels.h"
#include "FewRowsTile.h"
#include <string.h>

static inline uint16_t bf16_round_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x0040u);  // NaN: keep, quieten
    if ((u & 0x7F800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);           // zero or denormal → ±0
    u += 0x7FFFu + ((u >> 16) & 1u);                                                // nearest, ties to even
    return (uint16_t)(u >> 16);
}

static inline float bf16_to_float(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define RK_BF_X86 1
#define RK_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")))
static int rk_cpu_bf16(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512bf16");
    }
    return cached;
}
#else
#define RK_BF_X86 0
static int rk_cpu_bf16(void) { return 0; }
#endif

int rk_uses_avx512bf16(void) { return rk_path() == RK_PATH_AVX512 && rk_cpu_bf16(); }

// ---------------------------------------------------------------- conversions
#if RK_BF_X86
RK_BF16 static void to_bf16_avx512(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + i)));
    for (; i < n; i++) dst[i] = bf16_round_bits(src[i]);
}

RK_BF16 static void round_avx512(float *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i b = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16)));
    }
    for (; i < n; i++) dst[i] = bf16_to_float(bf16_round_bits(src[i]));
}
#endif

#if RK_BF_X86
// AVX2 (any vector path without AVX512_BF16): bf16_round_bits on 8 lanes in integer arithmetic, the rounded
// value left in the upper half of each dword (lower half 0).
#define RK_BF_AVX2 __attribute__((target("avx2,fma,f16c")))
RK_BF_AVX2 static inline __m256i bf16_round8(__m256 v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i mag = _mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF));
    const __m256i nan = _mm256_cmpgt_epi32(mag, _mm256_set1_epi32(0x7F800000));
    const __m256i tiny = _mm256_cmpeq_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7F800000)), _mm256_setzero_si256());
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), odd));  // nearest, ties to even
    r = _mm256_blendv_epi8(r, _mm256_or_si256(u, _mm256_set1_epi32(0x00400000)), nan);  // NaN: keep, quieten
    r = _mm256_blendv_epi8(r, _mm256_and_si256(u, _mm256_set1_epi32((int)0x80000000)), tiny);  // zero, denormal → ±0
    return _mm256_and_si256(r, _mm256_set1_epi32((int)0xFFFF0000));
}

RK_BF_AVX2 static void to_bf16_avx2(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = _mm256_srli_epi32(bf16_round8(_mm256_loadu_ps(src + i)), 16);
        __m256i b = _mm256_srli_epi32(bf16_round8(_mm256_loadu_ps(src + i + 8)), 16);
        // packus works per 128-bit lane: a0 b0 a1 b1 → reorder the 64-bit quarters to a0 a1 b0 b1.
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8);
        _mm256_storeu_si256((__m256i *)(dst + i), p);
    }
    for (; i < n; i++) dst[i] = bf16_round_bits(src[i]);
}

RK_BF_AVX2 static void round_avx2(float *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(bf16_round8(_mm256_loadu_ps(src + i))));
    for (; i < n; i++) dst[i] = bf16_to_float(bf16_round_bits(src[i]));
}
#endif

void rk_f32_to_bf16(uint16_t *dst, const float *src, size_t n) {
#if RK_BF_X86
    if (rk_uses_avx512bf16()) { to_bf16_avx512(dst, src, n); return; }
    if (rk_path() != RK_PATH_PORTABLE) { to_bf16_avx2(dst, src, n); return; }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = bf16_round_bits(src[i]);
}

void rk_bf16_round(float *dst, const float *src, size_t n) {
#if RK_BF_X86
    if (rk_uses_avx512bf16()) { round_avx512(dst, src, n); return; }
    if (rk_path() != RK_PATH_PORTABLE) { round_avx2(dst, src, n); return; }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_float(bf16_round_bits(src[i]));
}

// ---------------------------------------------------------------- transposed few-row product
// In place: xt[k][16] floats (rk_pack_rows_t16) → (k + 1) / 2 pairs of 16 dwords, dword r of pair p =
// bf16(xt[2p][r]) | bf16(xt[2p + 1][r]) << 16 (the high half 0 when 2p + 1 = k). Pair p is written over
// floats 16p … 16p + 15, which pair ⌊p/2⌋ ≤ p has already read.
#if RK_BF_X86
RK_BF16 static void pairs_t16_avx512(float *x, size_t k) {
    uint32_t *out = (uint32_t *)x;
    for (size_t p = 0; p < k / 2; p++) {
        __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_load_ps(x + 2 * p * 16)));
        __m512i hi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_load_ps(x + (2 * p + 1) * 16)));
        _mm512_store_si512(out + p * 16, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
    }
    if (k & 1)
        _mm512_store_si512(out + (k / 2) * 16,
                           _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_load_ps(x + (k - 1) * 16))));
}
#endif

void rk_bf16_pairs_t16(void *xt, size_t k) {
    float *x = (float *)xt;
#if RK_BF_X86
    if (rk_uses_avx512bf16()) { pairs_t16_avx512(x, k); return; }
#endif
    uint32_t *out = (uint32_t *)xt;
    for (size_t p = 0; p < (k + 1) / 2; p++) {
        uint32_t pair[16];
        for (int r = 0; r < 16; r++) {
            uint32_t lo = bf16_round_bits(x[2 * p * 16 + r]);
            uint32_t hi = 2 * p + 1 < k ? bf16_round_bits(x[(2 * p + 1) * 16 + r]) : 0;
            pair[r] = lo | hi << 16;
        }
        memcpy(out + p * 16, pair, sizeof pair);
    }
}

#if RK_BF_X86
// RK_T16_NR weight rows per tile; per pair p, one 16-lane vector of input pairs and one broadcast dword
// (two consecutive bf16 weights) per row: NR vdpbf16ps, no horizontal sums. The next tile's rows are
// prefetched a cache line (16 pairs) at a time as this one runs.
RK_BF16 static void bf16_t16_avx512(float *y, size_t ldy, const uint32_t *xp, const void *w, size_t rb,
                                    const int32_t *map, size_t m, size_t n0, size_t n1, size_t k, int acc) {
    const size_t kp = k / 2;
    for (size_t n = n0; n < n1; n += RK_T16_NR) {
        const uint8_t *wr[RK_T16_NR], *pf[RK_T16_NR];
        int nr = rk_t16_tile_rows(wr, pf, w, rb, map, n, n1);
        __m512 a[RK_T16_NR];
        for (int j = 0; j < RK_T16_NR; j++) a[j] = _mm512_setzero_ps();
        for (size_t p = 0; p < kp; p++) {
            if (p % 16 == 0)
                for (int j = 0; j < RK_T16_NR; j++) _mm_prefetch((const char *)(pf[j] + p * 4), _MM_HINT_T0);
            __m512bh xv = (__m512bh)_mm512_load_si512(xp + p * 16);
            for (int j = 0; j < RK_T16_NR; j++) {
                int32_t wp;
                memcpy(&wp, wr[j] + p * 4, 4);
                a[j] = _mm512_dpbf16_ps(a[j], xv, (__m512bh)_mm512_set1_epi32(wp));
            }
        }
        if (k & 1) {  // the last weight alone (its pair's input half is 0; never read past the row)
            __m512bh xv = (__m512bh)_mm512_load_si512(xp + kp * 16);
            for (int j = 0; j < RK_T16_NR; j++) {
                uint16_t wl;
                memcpy(&wl, wr[j] + kp * 4, 2);
                a[j] = _mm512_dpbf16_ps(a[j], xv, (__m512bh)_mm512_set1_epi32((int32_t)wl));
            }
        }
        rk_t16_store(y + n, ldy, a, nr, m, acc);
    }
}
#endif

// ---------------------------------------------------------------- dot-product few-row product (M ≤ 11)
// Tiles of 4 weight rows × MR ≤ 4 input rows, 32 k per vdpbf16ps (one 64-byte line of each row), then one
// horizontal sum per output. The inputs come as bf16 rows padded with zeros to a multiple of 32 and the
// weights' last partial line is a masked load, so the tail needs no scalar code. Batch-1 decoding is
// bound by the weight stream: 4 consecutive rows are one contiguous stretch, prefetched a tile ahead.
#if RK_BF_X86
#define BF_NT_PREFETCH_TILES 4
RK_BF16 static inline __attribute__((always_inline)) void bf16_nt_tile(
    const int MR, float *y, size_t ldy, const uint16_t *xb, size_t ldxb, const uint8_t *const *w,
    const uint8_t *const *pf, int nr, size_t k, int acc) {
    __m512 a[4][4];
    for (int j = 0; j < MR; j++) for (int i = 0; i < 4; i++) a[j][i] = _mm512_setzero_ps();
    const size_t nc = (k + 31) / 32;
    const __mmask32 tail = k % 32 ? (__mmask32)((1u << (k % 32)) - 1u) : (__mmask32)0xFFFFFFFFu;
    for (size_t c = 0; c < nc; c++) {
        __m512bh xv[4];
        for (int j = 0; j < MR; j++) xv[j] = (__m512bh)_mm512_loadu_si512(xb + j * ldxb + c * 32);
        const __mmask32 mk = c + 1 < nc ? (__mmask32)0xFFFFFFFFu : tail;
        for (int i = 0; i < 4; i++) {
            _mm_prefetch((const char *)(pf[i] + c * 64), _MM_HINT_T1);
            __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(mk, w[i] + c * 64);
            for (int j = 0; j < MR; j++) a[j][i] = _mm512_dpbf16_ps(a[j][i], xv[j], wv);
        }
    }
    for (int j = 0; j < MR; j++) {
        float *yr = y + j * ldy;
        for (int i = 0; i < nr; i++) {
            float s = _mm512_reduce_add_ps(a[j][i]);
            yr[i] = acc ? yr[i] + s : s;
        }
    }
}

// One input row: weight rows one after another (one sequential stream, as the fp32 gemv in Kernels.c),
// four accumulators and a software prefetch 4 KB ahead.
RK_BF16 static void bf16_gemv_avx512(float *y, const uint16_t *xb, const void *w, size_t rb, const int32_t *map,
                                     size_t n0, size_t n1, size_t k, int acc) {
    const size_t nc = (k + 31) / 32, full = k / 32;
    const __mmask32 tail = (__mmask32)((1u << (k % 32)) - 1u);
    for (size_t n = n0; n < n1; n++) {
        const uint8_t *wr = rk_mapped_row(w, rb, map, n);
        __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        size_t c = 0;
        for (; c + 4 <= full; c += 4) {
            for (int u = 0; u < 4; u++) {
                _mm_prefetch((const char *)(wr + (c + u) * 64 + 4096), _MM_HINT_T0);
                a[u] = _mm512_dpbf16_ps(a[u], (__m512bh)_mm512_loadu_si512(xb + (c + u) * 32),
                                        (__m512bh)_mm512_loadu_si512(wr + (c + u) * 64));
            }
        }
        for (; c < nc; c++) {
            _mm_prefetch((const char *)(wr + c * 64 + 4096), _MM_HINT_T0);
            const __m512i wv = c < full ? _mm512_loadu_si512(wr + c * 64) : _mm512_maskz_loadu_epi16(tail, wr + c * 64);
            a[c % 4] = _mm512_dpbf16_ps(a[c % 4], (__m512bh)_mm512_loadu_si512(xb + c * 32), (__m512bh)wv);
        }
        float v = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3])));
        y[n] = acc ? y[n] + v : v;
    }
}

RK_BF16 static void bf16_nt_avx512(float *y, size_t ldy, const uint16_t *xb, size_t ldxb, const void *w, size_t rb,
                                   const int32_t *map, size_t m, size_t n0, size_t n1, size_t k, int acc) {
    if (m == 1) { bf16_gemv_avx512(y, xb, w, rb, map, n0, n1, k, acc); return; }
    for (size_t n = n0; n < n1; n += 4) {
        int nr = n1 - n < 4 ? (int)(n1 - n) : 4;
        const uint8_t *wr[4], *pf[4];
        size_t pn = n + 4 * BF_NT_PREFETCH_TILES;
        for (int i = 0; i < 4; i++) {
            wr[i] = rk_mapped_row(w, rb, map, n + (size_t)(i < nr ? i : nr - 1));
            pf[i] = rk_mapped_row(w, rb, map, pn + (size_t)i < n1 ? pn + (size_t)i : n1 - 1);
        }
        for (size_t r = 0; r < m; r += 4) {
            const uint16_t *xr = xb + r * ldxb;
            float *yr = y + r * ldy + n;
            switch (m - r < 4 ? m - r : 4) {
            case 1: bf16_nt_tile(1, yr, ldy, xr, ldxb, wr, pf, nr, k, acc); break;
            case 2: bf16_nt_tile(2, yr, ldy, xr, ldxb, wr, pf, nr, k, acc); break;
            case 3: bf16_nt_tile(3, yr, ldy, xr, ldxb, wr, pf, nr, k, acc); break;
            default: bf16_nt_tile(4, yr, ldy, xr, ldxb, wr, pf, nr, k, acc); break;
            }
        }
    }
}
#endif

// Both layouts' portable product: input element (r, i) from bf16 rows xb[r·ldx + i] (paired = 0) or from
// the transposed pairs of rk_bf16_pairs_t16 (paired = 1).
static void bf16_portable(float *y, size_t ldy, const void *x, size_t ldx, int paired, const void *w, size_t rb,
                          const int32_t *map, size_t m, size_t n0, size_t n1, size_t k, int acc) {
    const uint16_t *xb = (const uint16_t *)x;
    const uint32_t *xp = (const uint32_t *)x;
    for (size_t n = n0; n < n1; n++) {
        const uint8_t *row = rk_mapped_row(w, rb, map, n);
        for (size_t r = 0; r < m; r++) {
            float s = 0.0f;
            for (size_t i = 0; i < k; i++) {
                uint16_t wb;
                memcpy(&wb, row + i * 2, 2);
                uint16_t xv = paired ? (uint16_t)(i % 2 ? xp[(i / 2) * 16 + r] >> 16 : xp[(i / 2) * 16 + r] & 0xFFFFu)
                                     : xb[r * ldx + i];
                s += bf16_to_float(xv) * bf16_to_float(wb);
            }
            y[r * ldy + n] = acc ? y[r * ldy + n] + s : s;
        }
    }
}

void rk_bf16_gemm_few_rows_nt(float *y, size_t ldy, const uint16_t *xb, size_t ldxb, const void *w, size_t row_bytes,
                              const int32_t *row_map, size_t m, size_t n0, size_t n1, size_t k, int accumulate) {
    if (m == 0 || n0 >= n1) return;
#if RK_BF_X86
    if (rk_uses_avx512bf16()) {
        bf16_nt_avx512(y, ldy, xb, ldxb, w, row_bytes, row_map, m, n0, n1, k, accumulate);
        return;
    }
#endif
    bf16_portable(y, ldy, xb, ldxb, 0, w, row_bytes, row_map, m, n0, n1, k, accumulate);
}

void rk_bf16_gemm_few_rows_t16(float *y, size_t ldy, const void *xp, const void *w, size_t row_bytes,
                               const int32_t *row_map, size_t m, size_t n0, size_t n1, size_t k, int accumulate) {
    if (m == 0 || n0 >= n1) return;
#if RK_BF_X86
    if (rk_uses_avx512bf16()) {
        bf16_t16_avx512(y, ldy, (const uint32_t *)xp, w, row_bytes, row_map, m, n0, n1, k, accumulate);
        return;
    }
#endif
    bf16_portable(y, ldy, xp, 0, 1, w, row_bytes, row_map, m, n0, n1, k, accumulate);
}
