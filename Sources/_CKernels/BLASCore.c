// OpenBLAS picks its kernels by CPU model at load time (DYNAMIC_ARCH builds, e.g. Debian's). A release older
// than the CPU does not know its model and falls back to a generic core: OpenBLAS 0.3.21 (Debian 12) takes the
// Xeons of family 6 model 207 (Emerald Rapids, AVX-512 + BF16) for "Prescott" and runs every sgemm on SSE3
// kernels, ~4x slower. When the core OpenBLAS chose lacks the vector units the CPU has, this re-runs OpenBLAS's
// own selection with OPENBLAS_CORETYPE naming the core those units match (the variable OpenBLAS documents for
// this); a core the user forced with OPENBLAS_CORETYPE is left alone. The entry points are looked up at run
// time, so other BLAS builds (static, Accelerate) are untouched.
#define _GNU_SOURCE
#include "CKernels.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdio.h>

#if defined(__linux__)
#include <dlfcn.h>
#endif

static char g_blas_note[160] = "";

const char *rk_blas_core_note(void) { return g_blas_note; }

const char *rk_blas_core_name(void) {
#if defined(__linux__)
    char *(*corename)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    if (corename) return corename();
#endif
    return "";
}

#if defined(__linux__) && defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
/// The OpenBLAS core these vector units call for (NULL: nothing above the generic cores).
static const char *core_for_cpu(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512dq"))
        return __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return NULL;
}

int rk_blas_core_is_vector(const char *name) {
    static const char *const wide[] = {"Haswell", "SkylakeX", "Cooperlake", "SapphireRapids", "Zen", "Excavator",
                                       "Steamroller", "Piledriver", "Bulldozer"};
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++)
        if (strncasecmp(name, wide[i], strlen(wide[i])) == 0) return 1;
    return 0;
}

/// Call before any other BLAS call, from one thread (MatMul.mode's one-time initialiser): between quit and init
/// OpenBLAS has no core, and setenv is not safe beside a concurrent getenv.
int rk_blas_select_core(void) {
    static int done = 0;
    if (done) return 0;
    done = 1;
    char *(*corename)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    void (*quit)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    void (*init)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    const char *want = core_for_cpu();
    // Set at all (even empty): the user's choice.
    if (!corename || !quit || !init || !want || getenv("OPENBLAS_CORETYPE")) return 0;
    char before[32];
    snprintf(before, sizeof before, "%s", corename());
    if (rk_blas_core_is_vector(before)) return 0;
    // From the best core these units allow down to Haswell: a release that lacks a name falls back again.
    static const char *const order[] = {"Cooperlake", "SkylakeX", "Haswell"};
    size_t first = 0;
    while (strcmp(order[first], want) != 0) first++;
    int selected = 0;
    for (size_t i = first; i < sizeof order / sizeof order[0] && !selected; i++) {
        setenv("OPENBLAS_CORETYPE", order[i], 1);
        quit();
        init();
        selected = rk_blas_core_is_vector(corename());
    }
    // OpenBLAS reads the variable only in init; child processes (CLI runs, MPI ranks) detect for themselves.
    unsetenv("OPENBLAS_CORETYPE");
    snprintf(
        g_blas_note, sizeof g_blas_note, selected ? "OpenBLAS core %s (its own detection chose %s for this CPU)"
                                                  : "OpenBLAS core %s: its own detection chose %s and it knows no vector"
                                                    " core for this CPU (sgemm runs generic kernels)",
        corename(), before);
    return selected;
}

int rk_blas_is_dynamic(void) { return dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init") != NULL; }
#else
int rk_blas_select_core(void) { return 0; }
int rk_blas_is_dynamic(void) { return 0; }
int rk_blas_core_is_vector(const char *name) { (void)name; return 0; }
#endif
