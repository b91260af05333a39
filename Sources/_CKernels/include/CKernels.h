// Compute-bound float32 kernels (anything that calls exp/log, and the hand-written products), written in C
// so that vector code can be selected at run time without compiler flags (see
// shared/anchors/swift-compute.md, section 5). Every function has three paths — portable C, AVX2+FMA+F16C
// and AVX-512 (F/BW/VL/DQ) — chosen per call from the CPU's features (__builtin_cpu_supports, checked
// once). x86 intrinsics sit behind `__x86_64__`; other targets (aarch64) compile the portable path only.
// Rows are contiguous; `n` counts elements. Outputs come first, then inputs, then sizes.
#pragma once
#include <stddef.h>
#include <stdint.h>

/// Kernel paths, ordered: a CPU that runs one runs every lower one.
enum { RK_PATH_PORTABLE = 0, RK_PATH_AVX2 = 1, RK_PATH_AVX512 = 2 };
/// The best path this CPU supports.
int rk_path_cpu(void);
/// The process's path: rk_path_cpu() capped by the environment variable RLHF_CPU (avx512 | avx2 | portable |
/// auto; read once; an unknown value is ignored here — callers validate it with rk_path_parse).
int rk_path_default(void);
/// The path in use on the calling thread: rk_path_default() capped by rk_set_thread_path.
int rk_path(void);
/// Caps the calling thread's path (tests run every path; the thread pool passes a caller's cap to the helper
/// that runs part of its loop). −1 removes the cap.
void rk_set_thread_path(int path);
/// The calling thread's cap, −1 when none.
int rk_thread_path_cap(void);
/// "portable", "avx2" or "avx512".
const char *rk_path_name(int path);
/// The path named `name` ("portable", "avx2", "avx512"), −1 for anything else (NULL included).
int rk_path_parse(const char *name);

/// y[i] = exp(x[i]) (x may alias y).
void rk_exp(float *y, const float *x, size_t n);

/// In place over one row: x = softmax(x + mask) over the first `valid` entries; entries [valid, n) become 0.
/// `mask` (additive, may be NULL) has n entries. Returns logsumexp of the valid masked entries
/// (-INFINITY when all of them are -inf, in which case the whole row becomes 0).
float rk_softmax_row(float *x, const float *mask, size_t valid, size_t n);
/// In place over one row: x = exp(x + mask - lse) for the first `valid` entries, 0 after (recomputes the
/// probabilities saved as logsumexp by rk_softmax_row). lse = -INFINITY gives a zero row.
void rk_softmax_recompute_row(float *x, const float *mask, float lse, size_t valid, size_t n);

/// Log-sum-exp of one row.
float rk_logsumexp_row(const float *x, size_t n);

/// out = silu(gate) * up,  silu(g) = g·σ(g)     (Shazeer 2020, SwiGLU)
void rk_swiglu_forward(float *out, const float *gate, const float *up, size_t n);
/// forward: y = g·σ(g)·u  ⇒  dg = dy·u·σ(g)(1 + g(1−σ(g))),  du = dy·g·σ(g). Writes (does not accumulate).
void rk_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n);
/// y = silu(x)
void rk_silu_forward(float *y, const float *x, size_t n);
/// dx = dy·σ(x)(1 + x(1−σ(x))). Writes.
void rk_silu_backward(float *dx, const float *dy, const float *x, size_t n);

/// Cross-entropy gradient of one row in place: x = coeff·(exp(x − lse) − onehot(target)).
/// target < 0 means no one-hot term.
void rk_softmax_xent_grad_row(float *x, float lse, int32_t target, float coeff, size_t n);

/// A spin-wait hint (x86 `pause`), for the thread pool.
void rk_cpu_relax(void);

/// y[m, n] (+)= Σ_k x[m, k] · w[n, k] for rows n in [n0, n1): the `nn.Linear` product for few rows
/// (decoding), streaming each weight row once while all M input rows stay in L1. x is [M, K]
/// (row stride ldx), w is [N, K] (row stride K), y is [M, N] (row stride ldy).
void rk_gemm_few_rows_nt(float *y, size_t ldy, const float *x, size_t ldx, const float *w,
                         size_t m, size_t n0, size_t n1, size_t k, int accumulate);

/// One query row of causal attention for the g query heads that share one KV head (decoding): for each
/// head h < g, out[h·d …] = Σ_j p_j v_j with p = softmax(scale · q_h·k_j + mask_j) over j < valid; q and out
/// hold the g heads' d floats one after another; k and v rows are `ld` floats apart; mask (additive, may be
/// NULL) has `valid` entries; `scores` is scratch for g · valid floats. All keys masked → that head's out = 0.
void rk_attend_group(float *out, const float *q, size_t g, const float *k, const float *v, size_t ld, const float *mask,
                     size_t valid, size_t d, float scale, float *scores);

/// Causal attention for one (batch, head) and a block of `rows` ≤ 16 consecutive query rows whose first
/// row sits at absolute position pos0: out[r, :] = Σ_{j ≤ pos0 + r, j < nkeys} softmax_j(scale · q_r·k_j +
/// mask_j) v_j and lse[r] (the row's log-sum-exp; -INFINITY and a zero row when every key is masked).
/// q/out rows are ldq/ldo floats apart, k/v rows ldkv; mask (additive, may be NULL) has nkeys entries.
/// Scratch: st holds nkeys·16 floats, qt d·16 floats, both 64-byte aligned. Returns 0 (and does nothing)
/// when the fused kernel does not apply (the portable path, or d not a multiple of 16): use GEMMs instead.
int rk_attention_forward_block(float *out, size_t ldo, float *lse, const float *q, size_t ldq, const float *k,
                               const float *v, size_t ldkv, const float *mask, size_t rows, size_t nkeys, size_t pos0,
                               size_t d, float scale, float *st, float *qt);

/// Backward of rk_attention_forward_block for the same block: writes dq rows, accumulates dk and dv over
/// keys [0, nkeys) (rows ldkv apart, like k and v). dout/out/q/dq rows are ldq apart; lse as the forward
/// returned it. Scratch: st and gt hold nkeys·16 floats, work 4·d·16, all 64-byte aligned. Returns 0 when
/// the fused kernel does not apply.
int rk_attention_backward_block(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                                const float *q, size_t ldq, const float *k, const float *v, size_t ldkv,
                                const float *mask, size_t rows, size_t nkeys, size_t pos0, size_t d, float scale,
                                float *st, float *gt, float *work);

/// Weight rows per register tile of the transposed few-row kernels (12 accumulators + the input vector
/// fit the 32 zmm registers with room for the FMA latency: 12 chains ≥ 4-cycle latency × 1 FMA per cycle);
/// callers split work in multiples of it.
#define RK_T16_NR 12

/// xt[k][16] = x[m, k] for m < M (≤ 16), 0 for the other lanes: the input rows packed for
/// rk_gemm_few_rows_t16 (xt holds k · 16 floats, 64-byte aligned).
void rk_pack_rows_t16(float *xt, const float *x, size_t ldx, size_t m, size_t k);
/// y[m, n] (+)= Σ_k xt[k][m] · w[n, k] for m < M (≤ 16), rows n in [n0, n1): the few-row product of
/// rk_gemm_few_rows_nt computed as Wᵀ-broadcast × 16-lane input vectors (no horizontal sums), for
/// 2 ≤ M ≤ 16 input rows packed by rk_pack_rows_t16.
void rk_gemm_few_rows_t16(float *y, size_t ldy, const float *xt, const float *w, size_t m, size_t n0, size_t n1,
                          size_t k, int accumulate);

/// y[n, :] += alpha · Σ_j u[n, j] · w[j, :] for rows n in [n0, n1): a rank-r update of few-column
/// factors (LoRA's u Bᵀ and du A). u is [N, r] (row stride ldu), w is [r, d] (contiguous rows),
/// y is [N, d] (row stride ldy).
void rk_rank_update_rows(float *y, size_t ldy, const float *u, size_t ldu, const float *w,
                         size_t r, size_t n0, size_t n1, size_t d, float alpha);

// ---------------------------------------------------------------- quantised weights (Quantized.c)
// Weights stay in their ggml block formats; values are decoded bit-identically to ggml's reference
// dequantisers (Q4_1: w = q·d + m; Q8_0: w = q·d; fp16 d and m), so products differ from
// dequantise-then-sgemm only in summation order.
// A matrix is `rows` rows of `row_bytes` bytes each; `row_map` (may be NULL) maps a logical row r to the
// physical row row_map[r] (q/k projections whose rows llama.cpp permuted). Q4_1 and Q8_0 rows hold
// whole 32-weight blocks, so their column count must be a multiple of 32.

/// Weight formats, numbered as ggml's `enum ggml_type`.
enum {
    RK_QTYPE_F32 = 0,
    RK_QTYPE_F16 = 1,
    RK_QTYPE_Q4_1 = 3,   // 20-byte blocks of 32: fp16 d, fp16 m, 16 bytes of nibbles (low = 0–15, high = 16–31)
    RK_QTYPE_Q8_0 = 8,   // 34-byte blocks of 32: fp16 d, 32 int8
    RK_QTYPE_BF16 = 30,
};

/// dst[r − row0, :] = dequantised logical row r for r in [row0, row0 + nrows); dst rows are `cols` floats.
void rk_dequant_rows(float *dst, const void *blocks, int type, size_t row_bytes, const int32_t *row_map,
                     size_t row0, size_t nrows, size_t cols);

/// y[m, n] (+)= Σ_k x[m, k] · W[n, k] for logical weight rows n in [n0, n1) and all m input rows, W
/// decoded on the fly (the quantised `nn.Linear` product for few rows). x is [M, K] (row stride ldx),
/// y is [M, N] (row stride ldy). Fastest for m ≤ 4; larger m decodes each 4-row tile once into a
/// thread-local scratch.
void rk_qgemm_few_rows_nt(float *y, size_t ldy, const float *x, size_t ldx, const void *blocks, int type,
                          size_t row_bytes, const int32_t *row_map, size_t m, size_t n0, size_t n1, size_t k,
                          int accumulate);
/// rk_qgemm_few_rows_nt for 2 ≤ M ≤ 16 input rows packed by rk_pack_rows_t16 (see rk_gemm_few_rows_t16):
/// tiles of weight rows decoded into L1 and multiplied as broadcasts against 16-lane input columns.
void rk_qgemm_few_rows_t16(float *y, size_t ldy, const float *xt, const void *blocks, int type, size_t row_bytes,
                           const int32_t *row_map, size_t m, size_t n0, size_t n1, size_t k, int accumulate);

// ---------------------------------------------------------------- decode panels (Panels.c)
// Q4_1 / Q8_0 matrices re-laid out in panels of 16 rows (per 32-column block: the rows' fp16 scales, then
// each column's 16 quants together) for the 12–16-row product, which they make compute-bound; results are
// bit-identical to rk_gemm_few_rows_t16 on the dequantised matrix.

/// Bytes of the panel layout of a [rows, k] matrix of `type` (0 unless Q4_1 or Q8_0 with k a multiple of 32).
size_t rk_qpanels_size(int type, size_t rows, size_t k);
/// Writes panels [p0, p1) (logical rows 16·p0 … 16·p1 − 1, rows ≥ `rows` zero) of the block matrix into
/// dst (rk_qpanels_size bytes for the whole matrix).
void rk_qpanels_pack(void *dst, const void *blocks, int type, size_t row_bytes, const int32_t *row_map, size_t rows,
                     size_t k, size_t p0, size_t p1);
/// Memory that a later phase will read (the next layer's KV cache during an MLP), prefetched by a product
/// kernel while it computes: its 32-column block step s (numbered across the products sharing the list)
/// fetches lines [s · per_step, (s + 1) · per_step) of the ranges in order (range i covers lines
/// [ends[i − 1], ends[i]) from starts[i], ends[−1] = 0). Memory-bound reads then overlap compute-bound products.
typedef struct {
    const uint8_t *const *starts;
    const size_t *ends;
    size_t count;
    size_t per_step;
} rk_prefetch_list;

/// y[m, n] (+)= Σ_k xt[k][m] · W[n, k] for m < M (≤ 16) and rows n in [16·p0, min(16·p1, rows)), x packed
/// by rk_pack_rows_t16. `prefetch` (may be NULL): block b of panel p is step `step0 + p · k / 32 + b` of it.
void rk_qpanels_gemm_t16(float *y, size_t ldy, const float *xt, const void *panels, int type, size_t rows, size_t m,
                         size_t p0, size_t p1, size_t k, int accumulate, const rk_prefetch_list *prefetch, size_t step0);

/// y[n] (+)= Σ_k W[n, k] · x[k] for one input row x (k floats) and rows n in [16·p0, min(16·p1, rows)): the
/// panels read by batch-1 decoding on the AVX2 and AVX-512 paths (each with its own factorised kernel; portable
/// C otherwise, which batch-1 decoding does not use). `xsums`: x's sums over its 32-element blocks
/// (rk_block_sums), which the factorised Q4_1 blocks need (the portable code and Q8_0 ignore it; NULL allowed
/// there).
void rk_qpanels_gemv(float *y, const float *x, const float *xsums, const void *panels, int type, size_t rows, size_t p0,
                     size_t p1, size_t k, int accumulate);
/// sums[b] = Σ_{i < 32} x[32b + i] for b < k / 32.
void rk_block_sums(float *sums, const float *x, size_t k);

// ---------------------------------------------------------------- bf16 products (BF16.c)
// BF16 weights × inputs rounded to bf16 (round-to-nearest-even, denormals → ±0, NaN kept: exactly
// vcvtneps2bf16), products summed in fp32 — llama.cpp's and torch's bf16 matmul semantics.

/// Returns 1 when the AVX512_BF16 kernels are in use (the AVX-512 path, and the CPU has avx512bf16).
int rk_uses_avx512bf16(void);

/// When the loaded OpenBLAS (DYNAMIC_ARCH) runs sgemm kernels of another vector width than the process's kernel
/// path (a release older than the CPU model takes it for a generic or an AVX2 core; RLHF_CPU caps the path below
/// the CPU's), re-selects its core to match the path (BLASCore.c). Returns 1 when it did; once per process,
/// before the first GEMM.
int rk_blas_select_core(void);
/// What `rk_blas_select_core` changed, or that a core forced with OPENBLAS_CORETYPE differs in width from the
/// path ("" when neither).
const char *rk_blas_core_note(void);
/// The core the loaded OpenBLAS runs ("" when the BLAS is not a DYNAMIC_ARCH OpenBLAS).
const char *rk_blas_core_name(void);
/// The vector width in bits of an OpenBLAS core's sgemm kernels: 512 (SkylakeX, Cooperlake, SapphireRapids),
/// 256 (the AVX/AVX2 cores: Haswell, Zen, …) or 0 (generic cores, unknown names, not x86-64).
int rk_blas_core_width(const char *name);
/// Whether the BLAS is an OpenBLAS that picks its core at run time (DYNAMIC_ARCH), which can be re-selected.
int rk_blas_is_dynamic(void);
/// dst[i] = bf16 bits of src[i].
void rk_f32_to_bf16(uint16_t *dst, const float *src, size_t n);
/// dst[i] = src[i] rounded to bf16 precision, kept as fp32 (dst may alias src).
void rk_bf16_round(float *dst, const float *src, size_t n);
/// In place: the fp32 columns xt[k][16] of rk_pack_rows_t16 → (k + 1) / 2 groups of 16 dwords, dword r of
/// group p = bf16(xt[2p][r]) | bf16(xt[2p + 1][r]) << 16 (0 in the high half when 2p + 1 = k).
void rk_bf16_pairs_t16(void *xt, size_t k);
/// y[m, n] (+)= Σ_k bf16(x[m, k]) · W[n, k] for m < M (≤ 16) and logical rows n in [n0, n1) of a BF16
/// matrix (rows of `row_bytes` bytes, `row_map` as for the quantised kernels), x packed by
/// rk_pack_rows_t16 then rk_bf16_pairs_t16.
void rk_bf16_gemm_few_rows_t16(float *y, size_t ldy, const void *xp, const void *w, size_t row_bytes,
                               const int32_t *row_map, size_t m, size_t n0, size_t n1, size_t k, int accumulate);
/// The same product for few input rows given as bf16 rows xb[m, ·] (row stride ldxb ≥ k rounded up to a
/// multiple of 32, zero beyond k): dot-product tiles of 4 weight rows, for M < RK_T16_NR.
void rk_bf16_gemm_few_rows_nt(float *y, size_t ldy, const uint16_t *xb, size_t ldxb, const void *w, size_t row_bytes,
                              const int32_t *row_map, size_t m, size_t n0, size_t n1, size_t k, int accumulate);

/// CPUs in the calling process's affinity mask (Linux), 0 when unknown.
int rlhf_affinity_cpu_count(void);
