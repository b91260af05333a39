// Portable, AVX2+FMA and AVX-512 implementations of the kernels declared in CKernels.h.
// exp: Cody–Waite range reduction x = k·ln2 + r, |r| ≤ ln2/2, degree-6 polynomial for e^r, then 2^k
// (scalef on AVX-512; two exponent-field multiplies on AVX2, the same single rounding); relative error
// ≈ 2 ulp, inputs clamped to [-104, 88.7] so -inf gives exactly 0.
#include "CKernels.h"
#include "FewRowsTile.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Portable code keeps each multiply and add separate (no fused contraction on targets with FMA, e.g. aarch64),
// so the portable few-row products stay bit-identical to one another, as the panel kernels claim.
#pragma STDC FP_CONTRACT OFF

// ---------------------------------------------------------------- dispatch
// The path in use = the best the CPU has, capped by RLHF_CPU (read once) and by the calling thread's cap
// (thread-local, so a test forcing a path does not affect tests running concurrently; the thread pool
// hands a caller's cap to the helper that runs its chunk).
static _Thread_local int g_thread_cap = -1;

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define RK_X86 1
#define RK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define RK_AVX2 __attribute__((target("avx2,fma,f16c")))
static int cpu_best_path(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return RK_PATH_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return RK_PATH_AVX2;
    return RK_PATH_PORTABLE;
}
#else
#define RK_X86 0
static int cpu_best_path(void) { return RK_PATH_PORTABLE; }
#endif

int rk_path_cpu(void) {
    static int cached = -1;
    if (cached < 0) cached = cpu_best_path();
    return cached;
}

int rk_path_parse(const char *name) {
    if (!name) return -1;
    if (strcmp(name, "avx512") == 0) return RK_PATH_AVX512;
    if (strcmp(name, "avx2") == 0) return RK_PATH_AVX2;
    if (strcmp(name, "portable") == 0) return RK_PATH_PORTABLE;
    return -1;
}

const char *rk_path_name(int path) {
    switch (path) {
    case RK_PATH_AVX512: return "avx512";
    case RK_PATH_AVX2: return "avx2";
    default: return "portable";
    }
}

int rk_path_default(void) {
    static int cached = -1;
    if (cached < 0) {
        int best = rk_path_cpu(), cap = best;
        const char *env = getenv("RLHF_CPU");
        if (env && *env && strcmp(env, "auto") != 0) {
            cap = rk_path_parse(env);
            if (cap < 0) cap = best;  // the CLI refuses unknown values with a message (KernelDispatch)
        }
        cached = cap < best ? cap : best;
    }
    return cached;
}

int rk_path(void) {
    int p = rk_path_default();
    return g_thread_cap >= 0 && g_thread_cap < p ? g_thread_cap : p;
}

void rk_set_thread_path(int path) { g_thread_cap = path < 0 ? -1 : path; }
int rk_thread_path_cap(void) { return g_thread_cap; }

// ---------------------------------------------------------------- portable
static inline float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

static void exp_portable(float *y, const float *x, size_t n) { for (size_t i = 0; i < n; i++) y[i] = expf(x[i]); }

static float softmax_row_portable(float *x, const float *mask, size_t valid, size_t n) {
    float m = -INFINITY;
    for (size_t i = 0; i < valid; i++) { float v = x[i] + (mask ? mask[i] : 0.0f); x[i] = v; if (v > m) m = v; }
    if (m == -INFINITY) { memset(x, 0, n * sizeof(float)); return -INFINITY; }
    double s = 0.0;
    for (size_t i = 0; i < valid; i++) { float e = expf(x[i] - m); x[i] = e; s += e; }
    float inv = (float)(1.0 / s);
    for (size_t i = 0; i < valid; i++) x[i] *= inv;
    for (size_t i = valid; i < n; i++) x[i] = 0.0f;
    return m + (float)log(s);
}

static void softmax_recompute_portable(float *x, const float *mask, float lse, size_t valid, size_t n) {
    if (lse == -INFINITY) { memset(x, 0, n * sizeof(float)); return; }
    for (size_t i = 0; i < valid; i++) x[i] = expf(x[i] + (mask ? mask[i] : 0.0f) - lse);
    for (size_t i = valid; i < n; i++) x[i] = 0.0f;
}

static float logsumexp_portable(const float *x, size_t n) {
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++) if (x[i] > m) m = x[i];
    if (m == -INFINITY) return -INFINITY;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += expf(x[i] - m);
    return m + (float)log(s);
}

static void swiglu_fwd_portable(float *o, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) o[i] = g[i] * sigmoidf_(g[i]) * u[i];
}
static void swiglu_bwd_portable(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float s = sigmoidf_(g[i]), d = dy[i];
        float gu = g[i] * s;
        dg[i] = d * u[i] * s * (1.0f + g[i] * (1.0f - s));
        du[i] = d * gu;
    }
}
static void silu_fwd_portable(float *y, const float *x, size_t n) { for (size_t i = 0; i < n; i++) y[i] = x[i] * sigmoidf_(x[i]); }
static void silu_bwd_portable(float *dx, const float *dy, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) { float s = sigmoidf_(x[i]); dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s)); }
}
static void xent_grad_portable(float *x, float lse, int32_t t, float c, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = c * expf(x[i] - lse);
    if (t >= 0 && (size_t)t < n) x[t] -= c;
}

// ---------------------------------------------------------------- AVX-512
#if RK_X86
RK_AVX512 static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.7f)), _mm512_set1_ps(-104.0f));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 r2 = _mm512_mul_ps(r, r);
    p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, k);
}
RK_AVX512 static inline __m512 sigmoid512(__m512 x) {
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}
#define TAILMASK(rem) ((__mmask16)((1u << (rem)) - 1u))

RK_AVX512 static void exp_avx512(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, exp512(_mm512_loadu_ps(x + i)));
    if (i < n) { __mmask16 m = TAILMASK(n - i); _mm512_mask_storeu_ps(y + i, m, exp512(_mm512_maskz_loadu_ps(m, x + i))); }
}

RK_AVX512 static float softmax_row_avx512(float *x, const float *mask, size_t valid, size_t n) {
    __m512 vm = _mm512_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 16 <= valid; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        if (mask) { v = _mm512_add_ps(v, _mm512_loadu_ps(mask + i)); _mm512_storeu_ps(x + i, v); }
        vm = _mm512_max_ps(vm, v);
    }
    if (i < valid) {
        __mmask16 k = TAILMASK(valid - i);
        __m512 v = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, x + i);
        if (mask) { v = _mm512_add_ps(v, _mm512_mask_loadu_ps(_mm512_setzero_ps(), k, mask + i)); _mm512_mask_storeu_ps(x + i, k, v); }
        vm = _mm512_max_ps(vm, v);
    }
    float m = _mm512_reduce_max_ps(vm);
    if (m == -INFINITY) { memset(x, 0, n * sizeof(float)); return -INFINITY; }
    __m512 vmax = _mm512_set1_ps(m), s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    i = 0;
    for (; i + 32 <= valid; i += 32) {
        __m512 e0 = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmax));
        __m512 e1 = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vmax));
        _mm512_storeu_ps(x + i, e0); _mm512_storeu_ps(x + i + 16, e1);
        s0 = _mm512_add_ps(s0, e0); s1 = _mm512_add_ps(s1, e1);
    }
    for (; i + 16 <= valid; i += 16) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmax));
        _mm512_storeu_ps(x + i, e); s0 = _mm512_add_ps(s0, e);
    }
    if (i < valid) {
        __mmask16 k = TAILMASK(valid - i);
        __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vmax));
        e = _mm512_maskz_mov_ps(k, e);
        _mm512_mask_storeu_ps(x + i, k, e); s0 = _mm512_add_ps(s0, e);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    __m512 inv = _mm512_set1_ps(1.0f / s);
    i = 0;
    for (; i + 16 <= valid; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
    if (i < valid) { __mmask16 k = TAILMASK(valid - i); _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv)); }
    if (valid < n) memset(x + valid, 0, (n - valid) * sizeof(float));
    return m + logf(s);
}

RK_AVX512 static void softmax_recompute_avx512(float *x, const float *mask, float lse, size_t valid, size_t n) {
    if (lse == -INFINITY) { memset(x, 0, n * sizeof(float)); return; }
    __m512 vl = _mm512_set1_ps(lse);
    size_t i = 0;
    for (; i + 16 <= valid; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        if (mask) v = _mm512_add_ps(v, _mm512_loadu_ps(mask + i));
        _mm512_storeu_ps(x + i, exp512(_mm512_sub_ps(v, vl)));
    }
    if (i < valid) {
        __mmask16 k = TAILMASK(valid - i);
        __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        if (mask) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, mask + i));
        _mm512_mask_storeu_ps(x + i, k, exp512(_mm512_sub_ps(v, vl)));
    }
    if (valid < n) memset(x + valid, 0, (n - valid) * sizeof(float));
}

RK_AVX512 static float logsumexp_avx512(const float *x, size_t n) {
    __m512 vm = _mm512_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) vm = _mm512_max_ps(vm, _mm512_loadu_ps(x + i));
    if (i < n) vm = _mm512_max_ps(vm, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), TAILMASK(n - i), x + i));
    float m = _mm512_reduce_max_ps(vm);
    if (m == -INFINITY) return -INFINITY;
    __m512 vmax = _mm512_set1_ps(m), s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_add_ps(s0, exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmax)));
        s1 = _mm512_add_ps(s1, exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vmax)));
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_add_ps(s0, exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmax)));
    if (i < n) {
        __mmask16 k = TAILMASK(n - i);
        s0 = _mm512_add_ps(s0, _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vmax))));
    }
    return m + logf(_mm512_reduce_add_ps(_mm512_add_ps(s0, s1)));
}

RK_AVX512 static void swiglu_fwd_avx512(float *o, const float *g, const float *u, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 vg = _mm512_loadu_ps(g + i);
        _mm512_storeu_ps(o + i, _mm512_mul_ps(_mm512_mul_ps(vg, sigmoid512(vg)), _mm512_loadu_ps(u + i)));
    }
    if (i < n) swiglu_fwd_portable(o + i, g + i, u + i, n - i);
}
RK_AVX512 static void swiglu_bwd_avx512(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n) {
    size_t i = 0;
    __m512 one = _mm512_set1_ps(1.0f);
    for (; i + 16 <= n; i += 16) {
        __m512 vg = _mm512_loadu_ps(g + i), vu = _mm512_loadu_ps(u + i), vd = _mm512_loadu_ps(dy + i);
        __m512 s = sigmoid512(vg);
        __m512 t = _mm512_fmadd_ps(vg, _mm512_sub_ps(one, s), one);
        _mm512_storeu_ps(dg + i, _mm512_mul_ps(_mm512_mul_ps(vd, vu), _mm512_mul_ps(s, t)));
        _mm512_storeu_ps(du + i, _mm512_mul_ps(vd, _mm512_mul_ps(vg, s)));
    }
    if (i < n) swiglu_bwd_portable(dg + i, du + i, dy + i, g + i, u + i, n - i);
}
RK_AVX512 static void silu_fwd_avx512(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) { __m512 v = _mm512_loadu_ps(x + i); _mm512_storeu_ps(y + i, _mm512_mul_ps(v, sigmoid512(v))); }
    if (i < n) silu_fwd_portable(y + i, x + i, n - i);
}
RK_AVX512 static void silu_bwd_avx512(float *dx, const float *dy, const float *x, size_t n) {
    size_t i = 0;
    __m512 one = _mm512_set1_ps(1.0f);
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i), s = sigmoid512(v);
        __m512 t = _mm512_fmadd_ps(v, _mm512_sub_ps(one, s), one);
        _mm512_storeu_ps(dx + i, _mm512_mul_ps(_mm512_loadu_ps(dy + i), _mm512_mul_ps(s, t)));
    }
    if (i < n) silu_bwd_portable(dx + i, dy + i, x + i, n - i);
}
RK_AVX512 static void xent_grad_avx512(float *x, float lse, int32_t t, float c, size_t n) {
    __m512 vl = _mm512_set1_ps(lse), vc = _mm512_set1_ps(c);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(vc, exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vl))));
    if (i < n) { __mmask16 k = TAILMASK(n - i); _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(vc, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vl)))); }
    if (t >= 0 && (size_t)t < n) x[t] -= c;
}

// ---------------------------------------------------------------- AVX2 + FMA
// The same algorithms on 8-lane vectors. Tails (n mod 8) take the portable code, except where a row-wide
// quantity (max, sum) must include them.
RK_AVX2 static inline __m256 exp256(__m256 x) {
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.7f)), _mm256_set1_ps(-104.0f));
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // 2^k for k in [-150, 128] as 2^k1 · 2^k2 (k1 = ⌊k/2⌋, both normal): p·2^k1 is exact, the second
    // multiply rounds once — the result of scalef, denormals included.
    __m256i ki = _mm256_cvtps_epi32(k), k1 = _mm256_srai_epi32(ki, 1), k2 = _mm256_sub_epi32(ki, k1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}
RK_AVX2 static inline __m256 sigmoid256(__m256 x) {
    __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}
RK_AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
RK_AVX2 static inline float hmax256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
// Lanes [0, n) of an 8-lane load/store (n < 8), for row tails whose values enter a row-wide max or sum.
RK_AVX2 static inline __m256i tail_mask256(size_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

RK_AVX2 static void exp_avx2(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp256(_mm256_loadu_ps(x + i)));
    if (i < n) { __m256i m = tail_mask256(n - i); _mm256_maskstore_ps(y + i, m, exp256(_mm256_maskload_ps(x + i, m))); }
}

RK_AVX2 static float softmax_row_avx2(float *x, const float *mask, size_t valid, size_t n) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 vm = ninf;
    size_t i = 0;
    for (; i + 8 <= valid; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (mask) { v = _mm256_add_ps(v, _mm256_loadu_ps(mask + i)); _mm256_storeu_ps(x + i, v); }
        vm = _mm256_max_ps(vm, v);
    }
    for (; i < valid; i++) {
        float v = x[i] + (mask ? mask[i] : 0.0f);
        x[i] = v;
        vm = _mm256_max_ps(vm, _mm256_set1_ps(v));
    }
    float m = hmax256(vm);
    if (m == -INFINITY) { memset(x, 0, n * sizeof(float)); return -INFINITY; }
    __m256 vmax = _mm256_set1_ps(m), s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    i = 0;
    for (; i + 16 <= valid; i += 16) {
        __m256 e0 = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
        __m256 e1 = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vmax));
        _mm256_storeu_ps(x + i, e0); _mm256_storeu_ps(x + i + 8, e1);
        s0 = _mm256_add_ps(s0, e0); s1 = _mm256_add_ps(s1, e1);
    }
    for (; i + 8 <= valid; i += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
        _mm256_storeu_ps(x + i, e); s0 = _mm256_add_ps(s0, e);
    }
    if (i < valid) {
        __m256i k = tail_mask256(valid - i);
        __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), vmax)), _mm256_castsi256_ps(k));
        _mm256_maskstore_ps(x + i, k, e); s0 = _mm256_add_ps(s0, e);
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    __m256 inv = _mm256_set1_ps(1.0f / s);
    i = 0;
    for (; i + 8 <= valid; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < valid; i++) x[i] *= 1.0f / s;
    if (valid < n) memset(x + valid, 0, (n - valid) * sizeof(float));
    return m + logf(s);
}

RK_AVX2 static void softmax_recompute_avx2(float *x, const float *mask, float lse, size_t valid, size_t n) {
    if (lse == -INFINITY) { memset(x, 0, n * sizeof(float)); return; }
    __m256 vl = _mm256_set1_ps(lse);
    size_t i = 0;
    for (; i + 8 <= valid; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (mask) v = _mm256_add_ps(v, _mm256_loadu_ps(mask + i));
        _mm256_storeu_ps(x + i, exp256(_mm256_sub_ps(v, vl)));
    }
    if (i < valid) {
        __m256i k = tail_mask256(valid - i);
        __m256 v = _mm256_maskload_ps(x + i, k);
        if (mask) v = _mm256_add_ps(v, _mm256_maskload_ps(mask + i, k));
        _mm256_maskstore_ps(x + i, k, exp256(_mm256_sub_ps(v, vl)));
    }
    if (valid < n) memset(x + valid, 0, (n - valid) * sizeof(float));
}

RK_AVX2 static float logsumexp_avx2(const float *x, size_t n) {
    __m256 vm = _mm256_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    float m = hmax256(vm);
    for (; i < n; i++) if (x[i] > m) m = x[i];
    if (m == -INFINITY) return -INFINITY;
    __m256 vmax = _mm256_set1_ps(m), s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_add_ps(s0, exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax)));
        s1 = _mm256_add_ps(s1, exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vmax)));
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_add_ps(s0, exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax)));
    if (i < n) {
        __m256i k = tail_mask256(n - i);
        s1 = _mm256_add_ps(s1, _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), vmax)), _mm256_castsi256_ps(k)));
    }
    return m + logf(hsum256(_mm256_add_ps(s0, s1)));
}

RK_AVX2 static void swiglu_fwd_avx2(float *o, const float *g, const float *u, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 vg = _mm256_loadu_ps(g + i);
        _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(vg, sigmoid256(vg)), _mm256_loadu_ps(u + i)));
    }
    if (i < n) swiglu_fwd_portable(o + i, g + i, u + i, n - i);
}
RK_AVX2 static void swiglu_bwd_avx2(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n) {
    size_t i = 0;
    __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 vg = _mm256_loadu_ps(g + i), vu = _mm256_loadu_ps(u + i), vd = _mm256_loadu_ps(dy + i);
        __m256 s = sigmoid256(vg);
        __m256 t = _mm256_fmadd_ps(vg, _mm256_sub_ps(one, s), one);
        _mm256_storeu_ps(dg + i, _mm256_mul_ps(_mm256_mul_ps(vd, vu), _mm256_mul_ps(s, t)));
        _mm256_storeu_ps(du + i, _mm256_mul_ps(vd, _mm256_mul_ps(vg, s)));
    }
    if (i < n) swiglu_bwd_portable(dg + i, du + i, dy + i, g + i, u + i, n - i);
}
RK_AVX2 static void silu_fwd_avx2(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) { __m256 v = _mm256_loadu_ps(x + i); _mm256_storeu_ps(y + i, _mm256_mul_ps(v, sigmoid256(v))); }
    if (i < n) silu_fwd_portable(y + i, x + i, n - i);
}
RK_AVX2 static void silu_bwd_avx2(float *dx, const float *dy, const float *x, size_t n) {
    size_t i = 0;
    __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), s = sigmoid256(v);
        __m256 t = _mm256_fmadd_ps(v, _mm256_sub_ps(one, s), one);
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(dy + i), _mm256_mul_ps(s, t)));
    }
    if (i < n) silu_bwd_portable(dx + i, dy + i, x + i, n - i);
}
RK_AVX2 static void xent_grad_avx2(float *x, float lse, int32_t t, float c, size_t n) {
    __m256 vl = _mm256_set1_ps(lse), vc = _mm256_set1_ps(c);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(vc, exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vl))));
    if (i < n) {
        __m256i k = tail_mask256(n - i);
        _mm256_maskstore_ps(x + i, k, _mm256_mul_ps(vc, exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), vl))));
    }
    if (t >= 0 && (size_t)t < n) x[t] -= c;
}

#define DISPATCH(call_avx512, call_avx2, call_portable)                 \
    do {                                                                  \
        switch (rk_path()) {                                              \
        case RK_PATH_AVX512: call_avx512; break;                          \
        case RK_PATH_AVX2: call_avx2; break;                              \
        default: call_portable; break;                                    \
        }                                                                 \
    } while (0)
#define DISPATCH_RET(call_avx512, call_avx2, call_portable)             \
    do {                                                                  \
        switch (rk_path()) {                                              \
        case RK_PATH_AVX512: return call_avx512;                          \
        case RK_PATH_AVX2: return call_avx2;                              \
        default: return call_portable;                                    \
        }                                                                 \
    } while (0)
#else
#define DISPATCH(call_avx512, call_avx2, call_portable) do { call_portable; } while (0)
#define DISPATCH_RET(call_avx512, call_avx2, call_portable) do { return call_portable; } while (0)
#endif

void rk_exp(float *y, const float *x, size_t n) { DISPATCH(exp_avx512(y, x, n), exp_avx2(y, x, n), exp_portable(y, x, n)); }
float rk_softmax_row(float *x, const float *mask, size_t valid, size_t n) {
    DISPATCH_RET(softmax_row_avx512(x, mask, valid, n), softmax_row_avx2(x, mask, valid, n),
                 softmax_row_portable(x, mask, valid, n));
}
void rk_softmax_recompute_row(float *x, const float *mask, float lse, size_t valid, size_t n) {
    DISPATCH(softmax_recompute_avx512(x, mask, lse, valid, n), softmax_recompute_avx2(x, mask, lse, valid, n),
             softmax_recompute_portable(x, mask, lse, valid, n));
}
float rk_logsumexp_row(const float *x, size_t n) {
    DISPATCH_RET(logsumexp_avx512(x, n), logsumexp_avx2(x, n), logsumexp_portable(x, n));
}
void rk_swiglu_forward(float *o, const float *g, const float *u, size_t n) {
    DISPATCH(swiglu_fwd_avx512(o, g, u, n), swiglu_fwd_avx2(o, g, u, n), swiglu_fwd_portable(o, g, u, n));
}
void rk_swiglu_backward(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n) {
    DISPATCH(swiglu_bwd_avx512(dg, du, dy, g, u, n), swiglu_bwd_avx2(dg, du, dy, g, u, n),
             swiglu_bwd_portable(dg, du, dy, g, u, n));
}
void rk_silu_forward(float *y, const float *x, size_t n) {
    DISPATCH(silu_fwd_avx512(y, x, n), silu_fwd_avx2(y, x, n), silu_fwd_portable(y, x, n));
}
void rk_silu_backward(float *dx, const float *dy, const float *x, size_t n) {
    DISPATCH(silu_bwd_avx512(dx, dy, x, n), silu_bwd_avx2(dx, dy, x, n), silu_bwd_portable(dx, dy, x, n));
}
void rk_softmax_xent_grad_row(float *x, float lse, int32_t t, float c, size_t n) {
    DISPATCH(xent_grad_avx512(x, lse, t, c, n), xent_grad_avx2(x, lse, t, c, n), xent_grad_portable(x, lse, t, c, n));
}

void rk_cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

// ---------------------------------------------------------------- few-row GEMM (decode)
static void gemm_few_portable(float *y, size_t ldy, const float *x, size_t ldx, const float *w,
                              size_t m, size_t n0, size_t n1, size_t k, int acc) {
    for (size_t n = n0; n < n1; n++) {
        const float *wr = w + n * k;
        for (size_t r = 0; r < m; r++) {
            float s = rk_dot_portable(x + r * ldx, wr, k);
            y[r * ldy + n] = acc ? y[r * ldy + n] + s : s;
        }
    }
}

#if RK_X86
// One tile: 4 weight rows × R input rows (R = 1 or 4, a compile-time constant so the R·4 zmm
// accumulators stay in registers), in 16-float chunks (the last one masked).
#define RK_FEW_TILE(R)                                                                                   \
    RK_AVX512 static inline void few_tile_##R(float *y, size_t ldy, const float *x, size_t ldx,          \
                                              const float *w0, size_t k, int acc, int prefetch) {        \
        const float *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;                                            \
        __m512 a[R][4];                                                                                  \
        for (int j = 0; j < R; j++) for (int c = 0; c < 4; c++) a[j][c] = _mm512_setzero_ps();        \
        for (size_t i = 0; i < k; i += 16) {                                                             \
            __mmask16 mk = k - i >= 16 ? (__mmask16)0xFFFF : TAILMASK(k - i);                            \
            __m512 b0 = _mm512_maskz_loadu_ps(mk, w0 + i), b1 = _mm512_maskz_loadu_ps(mk, w1 + i);       \
            __m512 b2 = _mm512_maskz_loadu_ps(mk, w2 + i), b3 = _mm512_maskz_loadu_ps(mk, w3 + i);       \
            if (prefetch) {                                                                              \
                _mm_prefetch((const char *)(w3 + k + i), _MM_HINT_T0);                                   \
                _mm_prefetch((const char *)(w3 + 2 * k + i), _MM_HINT_T0);                               \
                _mm_prefetch((const char *)(w3 + 3 * k + i), _MM_HINT_T0);                               \
                _mm_prefetch((const char *)(w3 + 4 * k + i), _MM_HINT_T0);                               \
            }                                                                                            \
            for (int j = 0; j < R; j++) {                                                                \
                __m512 xv = _mm512_maskz_loadu_ps(mk, x + j * ldx + i);                                  \
                a[j][0] = _mm512_fmadd_ps(xv, b0, a[j][0]);                                              \
                a[j][1] = _mm512_fmadd_ps(xv, b1, a[j][1]);                                              \
                a[j][2] = _mm512_fmadd_ps(xv, b2, a[j][2]);                                              \
                a[j][3] = _mm512_fmadd_ps(xv, b3, a[j][3]);                                              \
            }                                                                                            \
        }                                                                                                \
        for (int j = 0; j < R; j++) {                                                                    \
            float *yr = y + j * ldy;                                                                     \
            for (int c = 0; c < 4; c++) {                                                                \
                float v = _mm512_reduce_add_ps(a[j][c]);                                                 \
                yr[c] = acc ? yr[c] + v : v;                                                             \
            }                                                                                            \
        }                                                                                                \
    }
RK_FEW_TILE(4)
RK_FEW_TILE(1)

// One input row: weight rows one after another (a single sequential stream, which the hardware
// prefetcher follows best: measured 33 against 28 GB/s for 4 interleaved rows at 49152 × 576), four
// accumulators per row and a software prefetch 4 KB ahead.
RK_AVX512 static void gemv_rows_avx512(float *y, const float *x, const float *w, size_t n0, size_t n1, size_t k, int acc) {
    size_t kv = k & ~(size_t)15;
    __mmask16 tail = (__mmask16)((1u << (k - kv)) - 1u);
    for (size_t n = n0; n < n1; n++) {
        const float *wr = w + n * k;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        size_t i = 0;
        for (; i + 64 <= kv; i += 64) {
            _mm_prefetch((const char *)(wr + i + 1024), _MM_HINT_T0);
            _mm_prefetch((const char *)(wr + i + 1040), _MM_HINT_T0);
            _mm_prefetch((const char *)(wr + i + 1056), _MM_HINT_T0);
            _mm_prefetch((const char *)(wr + i + 1072), _MM_HINT_T0);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(wr + i), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(wr + i + 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(wr + i + 32), a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(wr + i + 48), a3);
        }
        for (; i < kv; i += 16) {
            _mm_prefetch((const char *)(wr + i + 1024), _MM_HINT_T0);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(wr + i), a0);
        }
        if (tail) a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, x + kv), _mm512_maskz_loadu_ps(tail, wr + kv), a1);
        float v = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        y[n] = acc ? y[n] + v : v;
    }
}

RK_AVX512 static void gemm_few_avx512(float *y, size_t ldy, const float *x, size_t ldx, const float *w,
                                      size_t m, size_t n0, size_t n1, size_t k, int acc) {
    if (m == 1) { gemv_rows_avx512(y, x, w, n0, n1, k, acc); return; }
    size_t n = n0;
    for (; n + 4 <= n1; n += 4) {
        const float *wn = w + n * k;
        size_t r = 0;
        for (; r + 4 <= m; r += 4) few_tile_4(y + r * ldy + n, ldy, x + r * ldx, ldx, wn, k, acc, r == 0);
        for (; r < m; r++) few_tile_1(y + r * ldy + n, ldy, x + r * ldx, ldx, wn, k, acc, r == 0);
    }
    if (n < n1) gemm_few_portable(y, ldy, x, ldx, w, m, n, n1, k, acc);
}
#endif

#if RK_X86
// AVX2: one input row streams the weight rows one after another (as gemv_rows_avx512: 4 accumulators of
// 8, prefetch 4 KB ahead); more rows take tiles of 4 weight rows × 2 input rows (8 accumulators + 4 weight
// vectors + the input fit the 16 ymm registers), the tile's weights re-read from L1 for further row pairs.
// Both are kept out of line so that each loop gets the 16 registers to itself.
__attribute__((noinline)) RK_AVX2 static void gemv_rows_avx2(float *y, const float *x, const float *w, size_t n0, size_t n1, size_t k, int acc) {
    size_t kv = k & ~(size_t)7;

    for (size_t n = n0; n < n1; n++) {
        const float *wr = w + n * k;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        size_t i = 0;
        for (; i + 32 <= kv; i += 32) {
            _mm_prefetch((const char *)(wr + i + 1024), _MM_HINT_T0);
            _mm_prefetch((const char *)(wr + i + 1040), _MM_HINT_T0);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(wr + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(wr + i + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(wr + i + 16), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(wr + i + 24), a3);
        }
        for (; i < kv; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(wr + i), a0);
        float v = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; i < k; i++) v += x[i] * wr[i];
        y[n] = acc ? y[n] + v : v;
    }
}

#define RK_FEW_TILE2(R)                                                                                  \
    __attribute__((noinline)) RK_AVX2 static void few_tile2_##R(float *y, size_t ldy, const float *x, size_t ldx,          \
                                             const float *w0, size_t k, int acc, int prefetch) {         \
        const float *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;                                            \
        __m256 a[R][4];                                                                                  \
        for (int j = 0; j < R; j++) for (int c = 0; c < 4; c++) a[j][c] = _mm256_setzero_ps();        \
        size_t kv = k & ~(size_t)7, i = 0;                                                               \
        for (; i < kv; i += 8) {                                                                         \
            __m256 b0 = _mm256_loadu_ps(w0 + i), b1 = _mm256_loadu_ps(w1 + i);                           \
            __m256 b2 = _mm256_loadu_ps(w2 + i), b3 = _mm256_loadu_ps(w3 + i);                           \
            if (prefetch && (i & 15) == 0) {                                                             \
                _mm_prefetch((const char *)(w3 + k + i), _MM_HINT_T0);                                   \
                _mm_prefetch((const char *)(w3 + 2 * k + i), _MM_HINT_T0);                               \
                _mm_prefetch((const char *)(w3 + 3 * k + i), _MM_HINT_T0);                               \
                _mm_prefetch((const char *)(w3 + 4 * k + i), _MM_HINT_T0);                               \
            }                                                                                            \
            for (int j = 0; j < R; j++) {                                                                \
                __m256 xv = _mm256_loadu_ps(x + j * ldx + i);                                            \
                a[j][0] = _mm256_fmadd_ps(xv, b0, a[j][0]);                                              \
                a[j][1] = _mm256_fmadd_ps(xv, b1, a[j][1]);                                              \
                a[j][2] = _mm256_fmadd_ps(xv, b2, a[j][2]);                                              \
                a[j][3] = _mm256_fmadd_ps(xv, b3, a[j][3]);                                              \
            }                                                                                            \
        }                                                                                                \
        for (int j = 0; j < R; j++) {                                                                    \
            float *yr = y + j * ldy;                                                                     \
            const float *xr = x + j * ldx;                                                               \
            for (int c = 0; c < 4; c++) {                                                                \
                float v = hsum256(a[j][c]);                                                              \
                for (size_t t = kv; t < k; t++) v += xr[t] * w0[c * k + t];                              \
                yr[c] = acc ? yr[c] + v : v;                                                             \
            }                                                                                            \
        }                                                                                                \
    }
RK_FEW_TILE2(2)
RK_FEW_TILE2(1)

RK_AVX2 static void gemm_few_avx2(float *y, size_t ldy, const float *x, size_t ldx, const float *w,
                                  size_t m, size_t n0, size_t n1, size_t k, int acc) {
    if (m == 1) { gemv_rows_avx2(y, x, w, n0, n1, k, acc); return; }
    size_t n = n0;
    for (; n + 4 <= n1; n += 4) {
        const float *wn = w + n * k;
        size_t r = 0;
        for (; r + 2 <= m; r += 2) few_tile2_2(y + r * ldy + n, ldy, x + r * ldx, ldx, wn, k, acc, r == 0);
        for (; r < m; r++) few_tile2_1(y + r * ldy + n, ldy, x + r * ldx, ldx, wn, k, acc, r == 0);
    }
    if (n < n1) gemm_few_portable(y, ldy, x, ldx, w, m, n, n1, k, acc);
}
#endif

void rk_gemm_few_rows_nt(float *y, size_t ldy, const float *x, size_t ldx, const float *w,
                         size_t m, size_t n0, size_t n1, size_t k, int accumulate) {
    DISPATCH(gemm_few_avx512(y, ldy, x, ldx, w, m, n0, n1, k, accumulate),
             gemm_few_avx2(y, ldy, x, ldx, w, m, n0, n1, k, accumulate),
             gemm_few_portable(y, ldy, x, ldx, w, m, n0, n1, k, accumulate));
}

// ---------------------------------------------------------------- few-row GEMM, transposed (2 ≤ M ≤ 16)
static void pack_t16_portable(float *xt, const float *x, size_t ldx, size_t m, size_t k) {
    memset(xt, 0, k * 16 * sizeof(float));
    for (size_t r = 0; r < m && r < 16; r++)
        for (size_t i = 0; i < k; i++) xt[i * 16 + r] = x[r * ldx + i];
}

#if RK_X86
// In-register 16 × 16 transpose: unpack pairs, then 2-float, 4-float (128-bit) and 8-float interleaves.
RK_AVX512 static inline void transpose16x16(__m512 r[16]) {
    __m512 t[16], u[16], v[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            v[8 * i + j] = _mm512_shuffle_f32x4(u[8 * i + j], u[8 * i + 4 + j], 0x88);
            v[8 * i + 4 + j] = _mm512_shuffle_f32x4(u[8 * i + j], u[8 * i + 4 + j], 0xdd);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(v[j], v[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(v[j], v[8 + j], 0xdd);
    }
}

// 16-column blocks of the m ≤ 16 rows transposed in registers (rows ≥ m and columns ≥ k read as 0).
RK_AVX512 static void pack_t16_avx512(float *xt, const float *x, size_t ldx, size_t m, size_t k) {
    for (size_t c0 = 0; c0 < k; c0 += 16) {
        size_t nc = k - c0 < 16 ? k - c0 : 16;
        __mmask16 cols = nc == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nc) - 1u);
        __m512 r[16];
        for (size_t i = 0; i < 16; i++) r[i] = i < m ? _mm512_maskz_loadu_ps(cols, x + i * ldx + c0) : _mm512_setzero_ps();
        transpose16x16(r);
        for (size_t i = 0; i < nc; i++) _mm512_store_ps(xt + (c0 + i) * 16, r[i]);
    }
}
#endif

#if RK_X86
// AVX2: 8 × 8 blocks transposed in registers (unpack pairs, 64-bit shuffles, 128-bit lane swaps), each
// 16-lane column written as its two halves; the last k mod 8 columns in scalar code.
RK_AVX2 static inline void transpose8x8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int j = 0; j < 4; j++) {
        r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
        r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
}

RK_AVX2 static void pack_t16_avx2(float *xt, const float *x, size_t ldx, size_t m, size_t k) {
    const size_t k8 = k & ~(size_t)7;
    for (size_t c0 = 0; c0 < k8; c0 += 8)
        for (size_t h = 0; h < 2; h++) {
            __m256 r[8];
            for (size_t i = 0; i < 8; i++) {
                size_t row = 8 * h + i;
                r[i] = row < m ? _mm256_loadu_ps(x + row * ldx + c0) : _mm256_setzero_ps();
            }
            transpose8x8(r);
            for (size_t i = 0; i < 8; i++) _mm256_store_ps(xt + (c0 + i) * 16 + 8 * h, r[i]);
        }
    for (size_t c = k8; c < k; c++)
        for (size_t r = 0; r < 16; r++) xt[c * 16 + r] = r < m ? x[r * ldx + c] : 0.0f;
}
#endif

void rk_pack_rows_t16(float *xt, const float *x, size_t ldx, size_t m, size_t k) {
#if RK_X86
    if (m <= 16) {
        switch (rk_path()) {
        case RK_PATH_AVX512: pack_t16_avx512(xt, x, ldx, m, k); return;
        case RK_PATH_AVX2: pack_t16_avx2(xt, x, ldx, m, k); return;
        default: break;
        }
    }
#endif
    pack_t16_portable(xt, x, ldx, m, k);
}

static void gemm_t16_portable(float *y, size_t ldy, const float *xt, const float *w, size_t m, size_t n0, size_t n1,
                              size_t k, int acc) {
    size_t n = n0;
    for (; n + 2 <= n1; n += 2) rk_t16_row2_portable(y + n, ldy, xt, w + n * k, w + (n + 1) * k, m, k, acc);
    if (n < n1) rk_t16_row_portable(y + n, ldy, xt, w + n * k, m, k, acc);
}

#if RK_X86
RK_AVX512 static void gemm_t16_avx512(float *y, size_t ldy, const float *xt, const float *w, size_t m, size_t n0,
                                      size_t n1, size_t k, int acc) {
    size_t n = n0;
    for (; n + RK_T16_NR <= n1; n += RK_T16_NR) {
        __m512 a[RK_T16_NR];
        for (int j = 0; j < RK_T16_NR; j++) a[j] = _mm512_setzero_ps();
        const float *pf = n + 2 * RK_T16_NR <= n1 ? w + (n + RK_T16_NR) * k : NULL;  // the next tile (measured from DRAM: 178–186 GFLOP/s vs 174–178 two or four tiles ahead)
        rk_t16_tile_12(a, xt, w + n * k, k, k, pf);
        rk_t16_store(y + n, ldy, a, RK_T16_NR, m, acc);
    }
    for (; n + 4 <= n1; n += 4) {
        __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        rk_t16_tile_4(a, xt, w + n * k, k, k, NULL);
        rk_t16_store(y + n, ldy, a, 4, m, acc);
    }
    for (; n < n1; n++) {
        __m512 a[1] = {_mm512_setzero_ps()};
        rk_t16_tile_1(a, xt, w + n * k, k, k, NULL);
        rk_t16_store(y + n, ldy, a, 1, m, acc);
    }
}
#endif

#if RK_X86
RK_AVX2 static void gemm_t16_avx2(float *y, size_t ldy, const float *xt, const float *w, size_t m, size_t n0,
                                  size_t n1, size_t k, int acc) {
    size_t n = n0;
    for (; n + RK_T16_NR <= n1; n += RK_T16_NR) {
        __m256 a[2 * RK_T16_NR];
        for (int j = 0; j < 2 * RK_T16_NR; j++) a[j] = _mm256_setzero_ps();
        const float *pf = n + 2 * RK_T16_NR <= n1 ? w + (n + RK_T16_NR) * k : NULL;
        rk_t16v2_tile_12(a, xt, w + n * k, k, k, pf);
        rk_t16v2_store(y + n, ldy, a, RK_T16_NR, m, acc);
    }
    for (; n + 4 <= n1; n += 4) {
        __m256 a[8];
        for (int j = 0; j < 8; j++) a[j] = _mm256_setzero_ps();
        rk_t16v2_tile_4(a, xt, w + n * k, k, k, NULL);
        rk_t16v2_store(y + n, ldy, a, 4, m, acc);
    }
    for (; n < n1; n++) {
        __m256 a[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        rk_t16v2_tile_1(a, xt, w + n * k, k, k, NULL);
        rk_t16v2_store(y + n, ldy, a, 1, m, acc);
    }
}
#endif

void rk_gemm_few_rows_t16(float *y, size_t ldy, const float *xt, const float *w, size_t m, size_t n0, size_t n1,
                          size_t k, int accumulate) {
    DISPATCH(gemm_t16_avx512(y, ldy, xt, w, m, n0, n1, k, accumulate),
             gemm_t16_avx2(y, ldy, xt, w, m, n0, n1, k, accumulate),
             gemm_t16_portable(y, ldy, xt, w, m, n0, n1, k, accumulate));
}

// ---------------------------------------------------------------- decode attention (one query row)
// The g query heads that share one KV head (GQA) are done together, so each key and value row is read
// once for all of them: the cache is streamed from memory once per step (it does not stay in cache
// between layers), and per key the g dot products reuse the loaded row.
static void attend_group_portable(float *out, const float *q, size_t g, const float *k, const float *v, size_t ld,
                                  const float *mask, size_t valid, size_t d, float scale, float *scores) {
    for (size_t h = 0; h < g; h++) {
        const float *qh = q + h * d;
        float *sh = scores + h * valid, *oh = out + h * d;
        for (size_t j = 0; j < valid; j++) {
            sh[j] = rk_dot_portable(qh, k + j * ld, d) * scale;
        }
        memset(oh, 0, d * sizeof(float));
        if (softmax_row_portable(sh, mask, valid, valid) == -INFINITY) continue;
        for (size_t j = 0; j < valid; j++)
            if (sh[j] != 0.0f) for (size_t i = 0; i < d; i++) oh[i] += sh[j] * v[j * ld + i];
    }
}

#if RK_X86
// GH heads of NV·16 dimensions: q and the outputs stay in registers; per key one load of the row, GH dot
// products and reductions, then per value row GH·NV FMAs. Rows the softmax zeroed for every head (masked
// keys) are skipped. Keys are prefetched 16 rows ahead (4 KB at D = 64 in the KV cache layout).
#define RK_ATTEND_GROUP(GH, NV)                                                                                  \
    RK_AVX512 static void attend_##GH##x##NV(float *out, const float *q, const float *k, const float *v, size_t ld, \
                                             const float *mask, size_t valid, float scale, float *scores) {       \
        __m512 qv[GH][NV], o[GH][NV];                                                                            \
        for (int h = 0; h < GH; h++)                                                                             \
            for (int c = 0; c < NV; c++) { qv[h][c] = _mm512_loadu_ps(q + (h * NV + c) * 16); o[h][c] = _mm512_setzero_ps(); } \
        for (size_t j = 0; j < valid; j++) {                                                                     \
            const float *kr = k + j * ld;                                                                        \
            if (j + 16 < valid) for (int c = 0; c < NV; c++) _mm_prefetch((const char *)(kr + 16 * ld + c * 16), _MM_HINT_T0); \
            __m512 kk[NV];                                                                                       \
            for (int c = 0; c < NV; c++) kk[c] = _mm512_loadu_ps(kr + c * 16);                                   \
            for (int h = 0; h < GH; h++) {                                                                       \
                __m512 a = _mm512_mul_ps(qv[h][0], kk[0]), b = _mm512_setzero_ps();                             \
                for (int c = 1; c < NV; c++) {                                                                   \
                    if (c & 1) b = _mm512_fmadd_ps(qv[h][c], kk[c], b);                                          \
                    else a = _mm512_fmadd_ps(qv[h][c], kk[c], a);                                                \
                }                                                                                                \
                scores[h * valid + j] = _mm512_reduce_add_ps(_mm512_add_ps(a, b)) * scale;                       \
            }                                                                                                    \
        }                                                                                                        \
        for (int h = 0; h < GH; h++) softmax_row_avx512(scores + h * valid, mask, valid, valid);                 \
        for (size_t j = 0; j < valid; j++) {                                                                     \
            const float *vr = v + j * ld;                                                                        \
            if (j + 16 < valid) for (int c = 0; c < NV; c++) _mm_prefetch((const char *)(vr + 16 * ld + c * 16), _MM_HINT_T0); \
            int any = 0;                                                                                         \
            for (int h = 0; h < GH; h++) any |= scores[h * valid + j] != 0.0f;                                  \
            if (!any) continue;                                                                                  \
            __m512 vv[NV];                                                                                       \
            for (int c = 0; c < NV; c++) vv[c] = _mm512_loadu_ps(vr + c * 16);                                   \
            for (int h = 0; h < GH; h++) {                                                                       \
                __m512 p = _mm512_set1_ps(scores[h * valid + j]);                                                \
                for (int c = 0; c < NV; c++) o[h][c] = _mm512_fmadd_ps(p, vv[c], o[h][c]);                      \
            }                                                                                                    \
        }                                                                                                        \
        for (int h = 0; h < GH; h++)                                                                             \
            for (int c = 0; c < NV; c++) _mm512_storeu_ps(out + (h * NV + c) * 16, o[h][c]);                     \
    }
RK_ATTEND_GROUP(1, 4)
RK_ATTEND_GROUP(2, 4)
RK_ATTEND_GROUP(3, 4)
RK_ATTEND_GROUP(4, 4)
RK_ATTEND_GROUP(1, 8)
RK_ATTEND_GROUP(2, 8)
RK_ATTEND_GROUP(1, 16)

// Any head dimension d = 16·nv ≤ 256, one head at a time (runtime nv).
RK_AVX512 static void attend_row_avx512(float *out, const float *q, const float *k, const float *v, size_t ld,
                                        const float *mask, size_t valid, size_t nv, float scale, float *scores) {
    __m512 qv[16], o[16];
    for (size_t c = 0; c < nv; c++) { qv[c] = _mm512_loadu_ps(q + c * 16); o[c] = _mm512_setzero_ps(); }
    for (size_t j = 0; j < valid; j++) {
        const float *kr = k + j * ld;
        if (j + 8 < valid) for (size_t c = 0; c < nv; c++) _mm_prefetch((const char *)(kr + 8 * ld + c * 16), _MM_HINT_T0);
        __m512 a = _mm512_setzero_ps();
        for (size_t c = 0; c < nv; c++) a = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(kr + c * 16), a);
        scores[j] = _mm512_reduce_add_ps(a) * scale;
    }
    if (softmax_row_avx512(scores, mask, valid, valid) != -INFINITY) {
        for (size_t j = 0; j < valid; j++) {
            if (scores[j] == 0.0f) continue;
            __m512 p = _mm512_set1_ps(scores[j]);
            const float *vr = v + j * ld;
            for (size_t c = 0; c < nv; c++) o[c] = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + c * 16), o[c]);
        }
    }
    for (size_t c = 0; c < nv; c++) _mm512_storeu_ps(out + c * 16, o[c]);
}

// Head dimensions 64 and 128 in groups of up to 4 (64) or 2 (128) heads, 256 one head at a time; other
// multiples of 16 up to 256 one head at a time with a runtime vector count.
RK_AVX512 static int attend_group_avx512(float *out, const float *q, size_t g, const float *k, const float *v, size_t ld,
                                         const float *mask, size_t valid, size_t d, float scale, float *scores) {
    if (d == 64) {
        for (size_t h = 0; h < g;) {
            size_t n = g - h >= 4 ? 4 : g - h;
            float *sc = scores + h * valid;
            switch (n) {
            case 4: attend_4x4(out + h * 64, q + h * 64, k, v, ld, mask, valid, scale, sc); break;
            case 3: attend_3x4(out + h * 64, q + h * 64, k, v, ld, mask, valid, scale, sc); break;
            case 2: attend_2x4(out + h * 64, q + h * 64, k, v, ld, mask, valid, scale, sc); break;
            default: attend_1x4(out + h * 64, q + h * 64, k, v, ld, mask, valid, scale, sc); break;
            }
            h += n;
        }
        return 1;
    }
    if (d == 128) {
        for (size_t h = 0; h < g;) {
            size_t n = g - h >= 2 ? 2 : 1;
            if (n == 2) attend_2x8(out + h * 128, q + h * 128, k, v, ld, mask, valid, scale, scores + h * valid);
            else attend_1x8(out + h * 128, q + h * 128, k, v, ld, mask, valid, scale, scores + h * valid);
            h += n;
        }
        return 1;
    }
    if (d == 256) {
        for (size_t h = 0; h < g; h++) attend_1x16(out + h * 256, q + h * 256, k, v, ld, mask, valid, scale, scores + h * valid);
        return 1;
    }
    if (d % 16 == 0 && d >= 16 && d <= 256) {
        for (size_t h = 0; h < g; h++)
            attend_row_avx512(out + h * d, q + h * d, k, v, ld, mask, valid, d / 16, scale, scores + h * valid);
        return 1;
    }
    return 0;
}
#endif

#if RK_X86
// AVX2, head dimensions d = 64·c (SmolLM2, Llama, Qwen: 64 or 128): per key one pass over the row for all g
// heads (the key's 64-float chunks in 8 registers, each head's dot product in 2 accumulators, q from L1);
// then per head, the value rows weighted in 64-float chunks kept in 8 registers. Masked keys (p = 0 for
// every head) are skipped; keys and values are prefetched 16 rows ahead, as in the AVX-512 kernel.
RK_AVX2 static int attend_group_avx2(float *out, const float *q, size_t g, const float *k, const float *v, size_t ld,
                                     const float *mask, size_t valid, size_t d, float scale, float *scores) {
    if (d % 64 != 0 || d == 0) return 0;
    for (size_t j = 0; j < valid; j++) {
        const float *kr = k + j * ld;
        if (j + 16 < valid) for (size_t c = 0; c < d; c += 16) _mm_prefetch((const char *)(kr + 16 * ld + c), _MM_HINT_T0);
        for (size_t h = 0; h < g; h++) {
            const float *qh = q + h * d;
            __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
            for (size_t c = 0; c < d; c += 16) {
                a = _mm256_fmadd_ps(_mm256_loadu_ps(qh + c), _mm256_loadu_ps(kr + c), a);
                b = _mm256_fmadd_ps(_mm256_loadu_ps(qh + c + 8), _mm256_loadu_ps(kr + c + 8), b);
            }
            scores[h * valid + j] = hsum256(_mm256_add_ps(a, b)) * scale;
        }
    }
    for (size_t h = 0; h < g; h++) {
        float *sh = scores + h * valid, *oh = out + h * d;
        int live = softmax_row_avx2(sh, mask, valid, valid) != -INFINITY;
        for (size_t c0 = 0; c0 < d; c0 += 64) {
            __m256 o[8];
            for (int c = 0; c < 8; c++) o[c] = _mm256_setzero_ps();
            for (size_t j = 0; live && j < valid; j++) {
                const float *vr = v + j * ld + c0;
                if (h == 0 && j + 16 < valid) {
                    _mm_prefetch((const char *)(vr + 16 * ld), _MM_HINT_T0);
                    _mm_prefetch((const char *)(vr + 16 * ld + 16), _MM_HINT_T0);
                    _mm_prefetch((const char *)(vr + 16 * ld + 32), _MM_HINT_T0);
                    _mm_prefetch((const char *)(vr + 16 * ld + 48), _MM_HINT_T0);
                }
                if (sh[j] == 0.0f) continue;
                __m256 p = _mm256_set1_ps(sh[j]);
                for (int c = 0; c < 8; c++) o[c] = _mm256_fmadd_ps(p, _mm256_loadu_ps(vr + c * 8), o[c]);
            }
            for (int c = 0; c < 8; c++) _mm256_storeu_ps(oh + c0 + c * 8, o[c]);
        }
    }
    return 1;
}
#endif

void rk_attend_group(float *out, const float *q, size_t g, const float *k, const float *v, size_t ld, const float *mask,
                     size_t valid, size_t d, float scale, float *scores) {
#if RK_X86
    switch (rk_path()) {
    case RK_PATH_AVX512:
        if (attend_group_avx512(out, q, g, k, v, ld, mask, valid, d, scale, scores)) return;
        break;
    case RK_PATH_AVX2:
        if (attend_group_avx2(out, q, g, k, v, ld, mask, valid, d, scale, scores)) return;
        break;
    default: break;
    }
#endif
    attend_group_portable(out, q, g, k, v, ld, mask, valid, d, scale, scores);
}

// ---------------------------------------------------------------- fused causal attention (training, prefill)
// One (batch, head) and a block of ≤ 16 query rows, in a "key-major" layout where lane r of a vector is
// query row r: Sᵀ[j] = Σ_d K[j, d] · Qᵀ[d] (the transposed few-row tile with K's rows as weights),
// masking and the softmax are lane-wise over j (no horizontal work), and Oᵀ[c] = Σ_j V[j, c] · Pᵀ[j]
// (the column tile over 16 columns of V at a time). Unnormalised exponentials are accumulated and the
// output scaled once by 1/l per row (flash-attention style); nothing but two small scratches is written.
#if RK_X86
// Rows r < m of x (row stride ldx), 16 columns at a time: xp[(cb·16 + r)·16 + c] = x[r, cb·16 + c], rows
// m … 15 zero — the K = rows operand of the dK / dV tiles (d a multiple of 16).
RK_AVX512 static void pack_rows_blocks16(float *xp, const float *x, size_t ldx, size_t m, size_t d) {
    for (size_t cb = 0; cb < d / 16; cb++)
        for (size_t r = 0; r < 16; r++)
            _mm512_store_ps(xp + (cb * 16 + r) * 16, r < m ? _mm512_loadu_ps(x + r * ldx + cb * 16) : _mm512_setzero_ps());
}

// acc tiles of 12 keys × 16 columns: y[j, cb·16 + c] += Σ_r w[j·16 + r] · xp[cb][r][c] for j < nkeys.
RK_AVX512 static void attention_key_update(float *y, size_t ldy, const float *w, const float *xp, size_t rows,
                                           size_t nkeys, size_t d) {
    for (size_t cb = 0; cb < d / 16; cb++) {
        const float *xb = xp + cb * 256;
        size_t j = 0;
        for (; j + RK_T16_NR <= nkeys; j += RK_T16_NR) {
            __m512 a[RK_T16_NR];
            for (int c = 0; c < RK_T16_NR; c++) a[c] = _mm512_loadu_ps(y + (j + c) * ldy + cb * 16);
            rk_t16_tile_12(a, xb, w + j * 16, 16, rows, NULL);
            for (int c = 0; c < RK_T16_NR; c++) _mm512_storeu_ps(y + (j + c) * ldy + cb * 16, a[c]);
        }
        for (; j < nkeys; j++) {
            __m512 a[1] = {_mm512_loadu_ps(y + j * ldy + cb * 16)};
            rk_t16_tile_1(a, xb, w + j * 16, 16, rows, NULL);
            _mm512_storeu_ps(y + j * ldy + cb * 16, a[0]);
        }
    }
}

// Sᵀ[j] (or dPᵀ[j]) = Σ_d w[j, d] · xt[d] for j < nkeys into st (16 floats per key).
RK_AVX512 static void attention_key_scores(float *st, const float *xt, const float *w, size_t ldw, size_t nkeys, size_t d) {
    size_t j = 0;
    for (; j + RK_T16_NR <= nkeys; j += RK_T16_NR) {
        __m512 a[RK_T16_NR];
        for (int c = 0; c < RK_T16_NR; c++) a[c] = _mm512_setzero_ps();
        rk_t16_tile_12(a, xt, w + j * ldw, ldw, d, NULL);
        for (int c = 0; c < RK_T16_NR; c++) _mm512_store_ps(st + (j + c) * 16, a[c]);
    }
    for (; j < nkeys; j++) {
        __m512 a[1] = {_mm512_setzero_ps()};
        rk_t16_tile_1(a, xt, w + j * ldw, ldw, d, NULL);
        _mm512_store_ps(st + j * 16, a[0]);
    }
}

RK_AVX512 static int attention_fwd_block_avx512(float *out, size_t ldo, float *lse, const float *q, size_t ldq,
                                                const float *k, const float *v, size_t ldkv, const float *mask,
                                                size_t rows, size_t nkeys, size_t pos0, size_t d, float scale,
                                                float *st, float *qt) {
    pack_t16_avx512(qt, q, ldq, rows, d);
    attention_key_scores(st, qt, k, ldkv, nkeys, d);
    // Scale, causal limit (key j visible to row r when j ≤ pos0 + r) and key mask; running max per row.
    const __m512i pos = _mm512_add_epi32(_mm512_set1_epi32((int)pos0),
                                         _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    const __m512 vscale = _mm512_set1_ps(scale), ninf = _mm512_set1_ps(-INFINITY);
    __m512 m = ninf;
    for (size_t j = 0; j < nkeys; j++) {
        __m512 s = _mm512_mul_ps(_mm512_load_ps(st + j * 16), vscale);
        if (mask) s = _mm512_add_ps(s, _mm512_set1_ps(mask[j]));
        s = _mm512_mask_blend_ps(_mm512_cmple_epi32_mask(_mm512_set1_epi32((int)j), pos), ninf, s);
        _mm512_store_ps(st + j * 16, s);
        m = _mm512_max_ps(m, s);
    }
    __mmask16 dead = _mm512_cmp_ps_mask(m, ninf, _CMP_EQ_OQ);  // rows whose keys are all masked
    __m512 msafe = _mm512_mask_blend_ps(dead, m, _mm512_setzero_ps()), l = _mm512_setzero_ps();
    for (size_t j = 0; j < nkeys; j++) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_load_ps(st + j * 16), msafe));
        _mm512_store_ps(st + j * 16, e);
        l = _mm512_add_ps(l, e);
    }
    __m512 inv = _mm512_maskz_div_ps((__mmask16)~dead, _mm512_set1_ps(1.0f), l);
    // lse = m + log(l), the log in scalar (16 per block); -inf for dead rows.
    float lsev[16] __attribute__((aligned(64))), lv[16] __attribute__((aligned(64)));
    _mm512_store_ps(lsev, m);
    _mm512_store_ps(lv, l);
    for (size_t r = 0; r < rows; r++) lse[r] = ((dead >> r) & 1) ? -INFINITY : lsev[r] + logf(lv[r]);
    for (size_t c0 = 0; c0 < d; c0 += 16) {
        __m512 a[16];
        for (int c = 0; c < 16; c++) a[c] = _mm512_setzero_ps();
        rk_t16_tile_cols16(a, st, v + c0, ldkv, nkeys);
        for (int c = 0; c < 16; c++) a[c] = _mm512_mul_ps(a[c], inv);
        rk_t16_store(out + c0, ldo, a, 16, rows, 0);
    }
    return 1;
}
// Backward of one block (see attention_fwd_block_avx512): P recomputed from lse, dPᵀ = V·dOᵀ, dS = P ⊙ (dP − δ)
// with δ_r = dO_r·O_r, then dQ (written), dK += dSᵀ Q and dV += Pᵀ dO over the block's keys.
RK_AVX512 static int attention_bwd_block_avx512(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                                const float *lse, const float *q, size_t ldq, const float *k,
                                                const float *v, size_t ldkv, const float *mask, size_t rows,
                                                size_t nkeys, size_t pos0, size_t d, float scale, float *st, float *gt,
                                                float *work) {
    float *qt = work, *dot = work + d * 16, *qp = work + 2 * d * 16, *dop = work + 3 * d * 16;
    pack_t16_avx512(qt, q, ldq, rows, d);
    pack_t16_avx512(dot, dout, ldq, rows, d);
    pack_rows_blocks16(qp, q, ldq, rows, d);
    pack_rows_blocks16(dop, dout, ldq, rows, d);
    attention_key_scores(st, qt, k, ldkv, nkeys, d);
    attention_key_scores(gt, dot, v, ldkv, nkeys, d);
    float lsev[16] __attribute__((aligned(64))), dl[16] __attribute__((aligned(64)));
    for (size_t r = 0; r < 16; r++) {
        lsev[r] = r < rows ? lse[r] : -INFINITY;
        __m512 acc = _mm512_setzero_ps();
        if (r < rows)
            for (size_t c = 0; c < d; c += 16)
                acc = _mm512_fmadd_ps(_mm512_loadu_ps(dout + r * ldq + c), _mm512_loadu_ps(out + r * ldq + c), acc);
        dl[r] = _mm512_reduce_add_ps(acc);
    }
    const __m512i pos = _mm512_add_epi32(_mm512_set1_epi32((int)pos0),
                                         _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    const __m512 vscale = _mm512_set1_ps(scale), ninf = _mm512_set1_ps(-INFINITY), delta = _mm512_load_ps(dl);
    __m512 l = _mm512_load_ps(lsev);
    __mmask16 live = (__mmask16)~_mm512_cmp_ps_mask(l, ninf, _CMP_EQ_OQ);
    l = _mm512_mask_blend_ps(live, _mm512_setzero_ps(), l);
    for (size_t j = 0; j < nkeys; j++) {
        __m512 sc = _mm512_mul_ps(_mm512_load_ps(st + j * 16), vscale);
        if (mask) sc = _mm512_add_ps(sc, _mm512_set1_ps(mask[j]));
        __mmask16 ok = live & _mm512_cmple_epi32_mask(_mm512_set1_epi32((int)j), pos);
        __m512 p = _mm512_maskz_mov_ps(ok, exp512(_mm512_sub_ps(_mm512_mask_blend_ps(ok, ninf, sc), l)));
        _mm512_store_ps(st + j * 16, p);
        _mm512_store_ps(gt + j * 16, _mm512_mul_ps(_mm512_mul_ps(p, _mm512_sub_ps(_mm512_load_ps(gt + j * 16), delta)), vscale));
    }
    for (size_t c0 = 0; c0 < d; c0 += 16) {  // dQᵀ[c] = Σ_j K[j, c] · dSᵀ[j]
        __m512 a[16];
        for (int c = 0; c < 16; c++) a[c] = _mm512_setzero_ps();
        rk_t16_tile_cols16(a, gt, k + c0, ldkv, nkeys);
        rk_t16_store(dq + c0, ldq, a, 16, rows, 0);
    }
    attention_key_update(dv, ldkv, st, dop, rows, nkeys, d);
    attention_key_update(dk, ldkv, gt, qp, rows, nkeys, d);
    return 1;
}
#endif

#if RK_X86
// AVX2: the same blocks with each 16-lane vector as two ymm (lanes 0–7, 8–15) and the register tiles of
// FewRowsTile.h (6 keys or 6 columns × 16 lanes per tile).
// The 16 lanes' causal + liveness test for key j: key j visible to row r when j ≤ pos0 + r.
RK_AVX2 static inline __m256 causal_half(size_t j, size_t pos0, int half) {
    __m256i lim = _mm256_add_epi32(_mm256_set1_epi32((int)pos0 + 1 + 8 * half), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(lim, _mm256_set1_epi32((int)j)));
}

// st[j][16] = Σ_d w[j, d] · xt[d] for j < nkeys.
RK_AVX2 static void attention_key_scores_avx2(float *st, const float *xt, const float *w, size_t ldw, size_t nkeys, size_t d) {
    size_t j = 0;
    for (; j + 6 <= nkeys; j += 6) {
        __m256 a[12];
        for (int c = 0; c < 12; c++) a[c] = _mm256_setzero_ps();
        rk_t16v2_tile_6(a, xt, w + j * ldw, ldw, d, NULL);
        for (int c = 0; c < 12; c++) _mm256_store_ps(st + j * 16 + 8 * c, a[c]);
    }
    for (; j < nkeys; j++) {
        __m256 a[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        rk_t16v2_tile_1(a, xt, w + j * ldw, ldw, d, NULL);
        _mm256_store_ps(st + j * 16, a[0]);
        _mm256_store_ps(st + j * 16 + 8, a[1]);
    }
}

// y[r, c] (=|+=) scale_r · Σ_j w[j, c] · st[j][r] for r < rows, c < d: the column tiles (6 columns × 16 lanes)
// over the keys; inv (may be NULL) holds per-lane scales as two ymm.
RK_AVX2 static void attention_cols_avx2(float *y, size_t ldy, const float *st, const float *w, size_t ldw, size_t nkeys,
                                        size_t d, size_t rows, const __m256 *inv) {
    for (size_t c0 = 0; c0 < d; c0 += 6) {
        int nc = d - c0 < 6 ? (int)(d - c0) : 6;
        __m256 a[12];
        for (int c = 0; c < 12; c++) a[c] = _mm256_setzero_ps();
        for (size_t j = 0; j < nkeys; j++) {
            __m256 x0 = _mm256_load_ps(st + j * 16), x1 = _mm256_load_ps(st + j * 16 + 8);
            const float *wr = w + j * ldw + c0;
            for (int c = 0; c < 6; c++) {
                if (c >= nc) break;
                __m256 b = _mm256_broadcast_ss(wr + c);
                a[2 * c] = _mm256_fmadd_ps(b, x0, a[2 * c]);
                a[2 * c + 1] = _mm256_fmadd_ps(b, x1, a[2 * c + 1]);
            }
        }
        if (inv) for (int c = 0; c < nc; c++) { a[2 * c] = _mm256_mul_ps(a[2 * c], inv[0]); a[2 * c + 1] = _mm256_mul_ps(a[2 * c + 1], inv[1]); }
        rk_t16v2_store(y + c0, ldy, a, nc, rows, 0);
    }
}

// y[j, :] += Σ_r st[j][r] · xp[r, :] for j < nkeys (xp: rows r × d, packed by pack_rows_blocks16_portable).
RK_AVX2 static void attention_key_update_avx2(float *y, size_t ldy, const float *st, const float *xp, size_t rows,
                                              size_t nkeys, size_t d) {
    for (size_t cb = 0; cb < d / 16; cb++) {
        const float *xb = xp + cb * 256;
        size_t j = 0;
        for (; j + 6 <= nkeys; j += 6) {
            __m256 a[12];
            for (int c = 0; c < 6; c++) {
                a[2 * c] = _mm256_loadu_ps(y + (j + c) * ldy + cb * 16);
                a[2 * c + 1] = _mm256_loadu_ps(y + (j + c) * ldy + cb * 16 + 8);
            }
            rk_t16v2_tile_6(a, xb, st + j * 16, 16, rows, NULL);
            for (int c = 0; c < 6; c++) {
                _mm256_storeu_ps(y + (j + c) * ldy + cb * 16, a[2 * c]);
                _mm256_storeu_ps(y + (j + c) * ldy + cb * 16 + 8, a[2 * c + 1]);
            }
        }
        for (; j < nkeys; j++) {
            __m256 a[2] = {_mm256_loadu_ps(y + j * ldy + cb * 16), _mm256_loadu_ps(y + j * ldy + cb * 16 + 8)};
            rk_t16v2_tile_1(a, xb, st + j * 16, 16, rows, NULL);
            _mm256_storeu_ps(y + j * ldy + cb * 16, a[0]);
            _mm256_storeu_ps(y + j * ldy + cb * 16 + 8, a[1]);
        }
    }
}

// Rows r < m of x, 16 columns at a time: xp[(cb·16 + r)·16 + c] = x[r, cb·16 + c], rows m … 15 zero.
static void pack_rows_blocks16_portable(float *xp, const float *x, size_t ldx, size_t m, size_t d) {
    for (size_t cb = 0; cb < d / 16; cb++)
        for (size_t r = 0; r < 16; r++)
            for (size_t c = 0; c < 16; c++) xp[(cb * 16 + r) * 16 + c] = r < m ? x[r * ldx + cb * 16 + c] : 0.0f;
}

RK_AVX2 static int attention_fwd_block_avx2(float *out, size_t ldo, float *lse, const float *q, size_t ldq,
                                            const float *k, const float *v, size_t ldkv, const float *mask, size_t rows,
                                            size_t nkeys, size_t pos0, size_t d, float scale, float *st, float *qt) {
    pack_t16_avx2(qt, q, ldq, rows, d);
    attention_key_scores_avx2(st, qt, k, ldkv, nkeys, d);
    const __m256 vscale = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-INFINITY), zero = _mm256_setzero_ps();
    __m256 m[2] = {ninf, ninf}, l[2] = {zero, zero}, inv[2];
    for (size_t j = 0; j < nkeys; j++)
        for (int h = 0; h < 2; h++) {
            __m256 sc = _mm256_mul_ps(_mm256_load_ps(st + j * 16 + 8 * h), vscale);
            if (mask) sc = _mm256_add_ps(sc, _mm256_set1_ps(mask[j]));
            sc = _mm256_blendv_ps(ninf, sc, causal_half(j, pos0, h));
            _mm256_store_ps(st + j * 16 + 8 * h, sc);
            m[h] = _mm256_max_ps(m[h], sc);
        }
    __m256 dead[2], msafe[2];
    for (int h = 0; h < 2; h++) {
        dead[h] = _mm256_cmp_ps(m[h], ninf, _CMP_EQ_OQ);  // rows whose keys are all masked
        msafe[h] = _mm256_blendv_ps(m[h], zero, dead[h]);
    }
    for (size_t j = 0; j < nkeys; j++)
        for (int h = 0; h < 2; h++) {
            __m256 e = exp256(_mm256_sub_ps(_mm256_load_ps(st + j * 16 + 8 * h), msafe[h]));
            _mm256_store_ps(st + j * 16 + 8 * h, e);
            l[h] = _mm256_add_ps(l[h], e);
        }
    float mv[16] __attribute__((aligned(32))), lv[16] __attribute__((aligned(32)));
    for (int h = 0; h < 2; h++) {
        inv[h] = _mm256_blendv_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), l[h]), zero, dead[h]);
        _mm256_store_ps(mv + 8 * h, m[h]);
        _mm256_store_ps(lv + 8 * h, l[h]);
    }
    for (size_t r = 0; r < rows; r++) lse[r] = mv[r] == -INFINITY ? -INFINITY : mv[r] + logf(lv[r]);
    attention_cols_avx2(out, ldo, st, v, ldkv, nkeys, d, rows, inv);
    return 1;
}

RK_AVX2 static int attention_bwd_block_avx2(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                            const float *lse, const float *q, size_t ldq, const float *k, const float *v,
                                            size_t ldkv, const float *mask, size_t rows, size_t nkeys, size_t pos0,
                                            size_t d, float scale, float *st, float *gt, float *work) {
    float *qt = work, *dot = work + d * 16, *qp = work + 2 * d * 16, *dop = work + 3 * d * 16;
    pack_t16_avx2(qt, q, ldq, rows, d);
    pack_t16_avx2(dot, dout, ldq, rows, d);
    pack_rows_blocks16_portable(qp, q, ldq, rows, d);
    pack_rows_blocks16_portable(dop, dout, ldq, rows, d);
    attention_key_scores_avx2(st, qt, k, ldkv, nkeys, d);
    attention_key_scores_avx2(gt, dot, v, ldkv, nkeys, d);
    float lsev[16] __attribute__((aligned(32))), dl[16] __attribute__((aligned(32)));
    for (size_t r = 0; r < 16; r++) {
        lsev[r] = r < rows ? lse[r] : -INFINITY;
        dl[r] = r < rows ? rk_dot_portable(dout + r * ldq, out + r * ldq, d) : 0.0f;
    }
    const __m256 vscale = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-INFINITY), zero = _mm256_setzero_ps();
    __m256 l[2], live[2], delta[2];
    for (int h = 0; h < 2; h++) {
        l[h] = _mm256_load_ps(lsev + 8 * h);
        live[h] = _mm256_cmp_ps(l[h], ninf, _CMP_NEQ_OQ);
        l[h] = _mm256_blendv_ps(zero, l[h], live[h]);
        delta[h] = _mm256_load_ps(dl + 8 * h);
    }
    for (size_t j = 0; j < nkeys; j++)
        for (int h = 0; h < 2; h++) {
            __m256 sc = _mm256_mul_ps(_mm256_load_ps(st + j * 16 + 8 * h), vscale);
            if (mask) sc = _mm256_add_ps(sc, _mm256_set1_ps(mask[j]));
            __m256 ok = _mm256_and_ps(live[h], causal_half(j, pos0, h));
            __m256 p = _mm256_and_ps(ok, exp256(_mm256_sub_ps(_mm256_blendv_ps(ninf, sc, ok), l[h])));
            _mm256_store_ps(st + j * 16 + 8 * h, p);
            __m256 g = _mm256_mul_ps(_mm256_mul_ps(p, _mm256_sub_ps(_mm256_load_ps(gt + j * 16 + 8 * h), delta[h])), vscale);
            _mm256_store_ps(gt + j * 16 + 8 * h, g);
        }
    attention_cols_avx2(dq, ldq, gt, k, ldkv, nkeys, d, rows, NULL);  // dQᵀ[c] = Σ_j K[j, c] · dSᵀ[j]
    attention_key_update_avx2(dv, ldkv, st, dop, rows, nkeys, d);
    attention_key_update_avx2(dk, ldkv, gt, qp, rows, nkeys, d);
    return 1;
}
#endif

int rk_attention_forward_block(float *out, size_t ldo, float *lse, const float *q, size_t ldq, const float *k,
                               const float *v, size_t ldkv, const float *mask, size_t rows, size_t nkeys, size_t pos0,
                               size_t d, float scale, float *st, float *qt) {
#if RK_X86
    if (d % 16 == 0 && d > 0 && rows >= 1 && rows <= 16 && nkeys > 0) {
        switch (rk_path()) {
        case RK_PATH_AVX512:
            return attention_fwd_block_avx512(out, ldo, lse, q, ldq, k, v, ldkv, mask, rows, nkeys, pos0, d, scale, st, qt);
        case RK_PATH_AVX2:
            return attention_fwd_block_avx2(out, ldo, lse, q, ldq, k, v, ldkv, mask, rows, nkeys, pos0, d, scale, st, qt);
        default: break;
        }
    }
#endif
    (void)out; (void)ldo; (void)lse; (void)q; (void)ldq; (void)k; (void)v; (void)ldkv; (void)mask; (void)rows;
    (void)nkeys; (void)pos0; (void)d; (void)scale; (void)st; (void)qt;
    return 0;
}

int rk_attention_backward_block(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                                const float *q, size_t ldq, const float *k, const float *v, size_t ldkv,
                                const float *mask, size_t rows, size_t nkeys, size_t pos0, size_t d, float scale,
                                float *st, float *gt, float *work) {
#if RK_X86
    if (d % 16 == 0 && d > 0 && rows >= 1 && rows <= 16 && nkeys > 0) {
        switch (rk_path()) {
        case RK_PATH_AVX512:
            return attention_bwd_block_avx512(dq, dk, dv, dout, out, lse, q, ldq, k, v, ldkv, mask, rows, nkeys, pos0, d,
                                              scale, st, gt, work);
        case RK_PATH_AVX2:
            return attention_bwd_block_avx2(dq, dk, dv, dout, out, lse, q, ldq, k, v, ldkv, mask, rows, nkeys, pos0, d,
                                            scale, st, gt, work);
        default: break;
        }
    }
#endif
    (void)dq; (void)dk; (void)dv; (void)dout; (void)out; (void)lse; (void)q; (void)ldq; (void)k; (void)v; (void)ldkv;
    (void)mask; (void)rows; (void)nkeys; (void)pos0; (void)d; (void)scale; (void)st; (void)gt; (void)work;
    return 0;
}

// ---------------------------------------------------------------- rank-r row updates (LoRA)
static void rank_update_portable(float *y, size_t ldy, const float *u, size_t ldu, const float *w,
                                 size_t r, size_t n0, size_t n1, size_t d, float alpha) {
    for (size_t n = n0; n < n1; n++) {
        float *yr = y + n * ldy;
        for (size_t j = 0; j < r; j++) {
            float a = alpha * u[n * ldu + j];
            const float *wr = w + j * d;
            for (size_t i = 0; i < d; i++) yr[i] += a * wr[i];
        }
    }
}

#if RK_X86
RK_AVX512 static void rank_update_avx512(float *y, size_t ldy, const float *u, size_t ldu, const float *w,
                                         size_t r, size_t n0, size_t n1, size_t d, float alpha) {
    size_t d64 = d & ~(size_t)63;
    for (size_t n = n0; n < n1; n++) {
        float *yr = y + n * ldy;
        const float *ur = u + n * ldu;
        size_t i = 0;
        for (; i < d64; i += 64) {
            __m512 a0 = _mm512_loadu_ps(yr + i), a1 = _mm512_loadu_ps(yr + i + 16);
            __m512 a2 = _mm512_loadu_ps(yr + i + 32), a3 = _mm512_loadu_ps(yr + i + 48);
            for (size_t j = 0; j < r; j++) {
                __m512 c = _mm512_set1_ps(alpha * ur[j]);
                const float *wr = w + j * d + i;
                a0 = _mm512_fmadd_ps(c, _mm512_loadu_ps(wr), a0);
                a1 = _mm512_fmadd_ps(c, _mm512_loadu_ps(wr + 16), a1);
                a2 = _mm512_fmadd_ps(c, _mm512_loadu_ps(wr + 32), a2);
                a3 = _mm512_fmadd_ps(c, _mm512_loadu_ps(wr + 48), a3);
            }
            _mm512_storeu_ps(yr + i, a0); _mm512_storeu_ps(yr + i + 16, a1);
            _mm512_storeu_ps(yr + i + 32, a2); _mm512_storeu_ps(yr + i + 48, a3);
        }
        for (; i < d; i += 16) {
            __mmask16 k = d - i >= 16 ? (__mmask16)0xFFFF : TAILMASK(d - i);
            __m512 a = _mm512_maskz_loadu_ps(k, yr + i);
            for (size_t j = 0; j < r; j++)
                a = _mm512_fmadd_ps(_mm512_set1_ps(alpha * ur[j]), _mm512_maskz_loadu_ps(k, w + j * d + i), a);
            _mm512_mask_storeu_ps(yr + i, k, a);
        }
    }
}
#endif

#if RK_X86
RK_AVX2 static void rank_update_avx2(float *y, size_t ldy, const float *u, size_t ldu, const float *w,
                                     size_t r, size_t n0, size_t n1, size_t d, float alpha) {
    size_t d32 = d & ~(size_t)31;
    for (size_t n = n0; n < n1; n++) {
        float *yr = y + n * ldy;
        const float *ur = u + n * ldu;
        size_t i = 0;
        for (; i < d32; i += 32) {
            __m256 a0 = _mm256_loadu_ps(yr + i), a1 = _mm256_loadu_ps(yr + i + 8);
            __m256 a2 = _mm256_loadu_ps(yr + i + 16), a3 = _mm256_loadu_ps(yr + i + 24);
            for (size_t j = 0; j < r; j++) {
                __m256 c = _mm256_set1_ps(alpha * ur[j]);
                const float *wr = w + j * d + i;
                a0 = _mm256_fmadd_ps(c, _mm256_loadu_ps(wr), a0);
                a1 = _mm256_fmadd_ps(c, _mm256_loadu_ps(wr + 8), a1);
                a2 = _mm256_fmadd_ps(c, _mm256_loadu_ps(wr + 16), a2);
                a3 = _mm256_fmadd_ps(c, _mm256_loadu_ps(wr + 24), a3);
            }
            _mm256_storeu_ps(yr + i, a0); _mm256_storeu_ps(yr + i + 8, a1);
            _mm256_storeu_ps(yr + i + 16, a2); _mm256_storeu_ps(yr + i + 24, a3);
        }
        for (; i < d; i += 8) {
            __m256i k = tail_mask256(d - i < 8 ? d - i : 8);
            __m256 a = _mm256_maskload_ps(yr + i, k);
            for (size_t j = 0; j < r; j++)
                a = _mm256_fmadd_ps(_mm256_set1_ps(alpha * ur[j]), _mm256_maskload_ps(w + j * d + i, k), a);
            _mm256_maskstore_ps(yr + i, k, a);
        }
    }
}
#endif

void rk_rank_update_rows(float *y, size_t ldy, const float *u, size_t ldu, const float *w,
                         size_t r, size_t n0, size_t n1, size_t d, float alpha) {
    DISPATCH(rank_update_avx512(y, ldy, u, ldu, w, r, n0, n1, d, alpha),
             rank_update_avx2(y, ldy, u, ldu, w, r, n0, n1, d, alpha),
             rank_update_portable(y, ldy, u, ldu, w, r, n0, n1, d, alpha));
}
