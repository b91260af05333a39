// CBLAS entry points. On Linux: OpenBLAS (cblas.h plus openblas_set_num_threads).
#ifdef __APPLE__
#include <Accelerate/Accelerate.h>
static inline void openblas_set_num_threads(int n) { (void)n; }
static inline int openblas_get_num_threads(void) { return 1; }
#else
#include <cblas.h>
#endif
