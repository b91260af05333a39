// The number of CPUs in this process's affinity mask (what taskset or mpirun's --bind-to gives it). Foundation's
// activeProcessorCount counts every online CPU, so a rank bound to one core would run a spinning helper thread
// on the same core as its main thread.
#define _GNU_SOURCE
#include <sched.h>
#include "CKernels.h"

int rlhf_affinity_cpu_count(void) {
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
#endif
    return 0;
}
