// OpenBLAS picks its kernels by CPU model at load time (DYNAMIC_ARCH builds, e.g. Debian's). A release older
// than the CPU does not know its model and falls back to an older core: OpenBLAS 0.3.21 (Debian 12) takes the
// Xeons of family 6 model 207 (Emerald Rapids, AVX-512 + BF16) for "Prescott" and runs every sgemm on SSE3
// kernels, ~4x slower. When the core OpenBLAS chose has sgemm kernels of another width than the process's
// kernel path (KernelDispatch: the CPU's best, capped by RLHF_CPU), this re-runs OpenBLAS's own selection with
// OPENBLAS_CORETYPE naming the core that width calls for (the variable OpenBLAS documents for this): up to the
// CPU's AVX-512, or down to AVX2 when RLHF_CPU=avx2 asks the whole process to run as an AVX2 machine would
// (on a Zen 5, 8×256 scoring runs at 0.85k tokens/s on AVX2 sgemm kernels and 1.55k on AVX-512 ones, so a
// comparison on the AVX2 path would otherwise be off by that much). The portable path leaves OpenBLAS's
// choice alone: it caps our C kernels, not the BLAS. A core set with OPENBLAS_CORETYPE (by the user or the
// machine's environment) is left alone, and the note says when its width differs from the path's. The entry points
// are looked up at run time, so other BLAS builds (static, Accelerate) are untouched.
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
/// The OpenBLAS core the process's kernel path calls for (NULL: the portable path, OpenBLAS's choice stands).
static const char *core_for_path(void) {
    __builtin_cpu_init();
    switch (rk_path_default()) {
    case RK_PATH_AVX512: return __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
    case RK_PATH_AVX2: return "Haswell";
    default: return NULL;
    }
}

int rk_blas_core_width(const char *name) {
    static const char *const w512[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
    static const char *const w256[] = {"Haswell", "Zen", "Excavator", "Steamroller", "Piledriver", "Bulldozer"};
    for (size_t i = 0; i < sizeof w512 / sizeof w512[0]; i++)
        if (strncasecmp(name, w512[i], strlen(w512[i])) == 0) return 512;
    for (size_t i = 0; i < sizeof w256 / sizeof w256[0]; i++)
        if (strncasecmp(name, w256[i], strlen(w256[i])) == 0) return 256;
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
    const char *want = core_for_path();
    if (!corename || !quit || !init || !want) return 0;
    const char *forced = getenv("OPENBLAS_CORETYPE");
    if (forced) {  // set at all (even empty): the user's choice
        int have = rk_blas_core_width(corename()), path = rk_blas_core_width(want);
        if (have != path)
            snprintf(g_blas_note, sizeof g_blas_note,
                     "OpenBLAS core %s, forced by OPENBLAS_CORETYPE=%s (the %s path would take %s, %s sgemm kernels)",
                     corename(), forced, rk_path_name(rk_path_default()), want, have < path ? "wider" : "narrower");
        return 0;
    }
    char before[32];
    snprintf(before, sizeof before, "%s", corename());
    if (rk_blas_core_width(before) == rk_blas_core_width(want)) return 0;
    // From the best core the path allows down to Haswell: a release that lacks a name falls back again.
    static const char *const order[] = {"Cooperlake", "SkylakeX", "Haswell"};
    size_t first = 0;
    while (strcmp(order[first], want) != 0) first++;
    int selected = 0;
    for (size_t i = first; i < sizeof order / sizeof order[0] && !selected; i++) {
        setenv("OPENBLAS_CORETYPE", order[i], 1);
        quit();
        init();
        selected = rk_blas_core_width(corename()) == rk_blas_core_width(order[i]);  // OpenBLAS knew the name
    }
    // OpenBLAS reads the variable only in init; child processes (CLI runs, MPI ranks) detect for themselves.
    unsetenv("OPENBLAS_CORETYPE");
    snprintf(g_blas_note, sizeof g_blas_note,
             selected ? "OpenBLAS core %s for the %s path (its own detection chose %s)"
                      : "OpenBLAS core %s for the %s path: its own detection chose %s, and it knows no vector core"
                        " for this path (sgemm runs generic kernels)",
             corename(), rk_path_name(rk_path_default()), before);
    return selected;
}

int rk_blas_is_dynamic(void) { return dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init") != NULL; }
#else
int rk_blas_select_core(void) { return 0; }
int rk_blas_is_dynamic(void) { return 0; }
int rk_blas_core_width(const char *name) { (void)name; return 0; }
#endif
