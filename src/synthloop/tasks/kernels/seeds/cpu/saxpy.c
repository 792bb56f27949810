#include <stddef.h>
#include <stdint.h>

/* Naive seed: one fused multiply-add per element, OpenMP over the array. */
void saxpy(const float* x, float* y, float a, uint32_t N) {
    #pragma omp parallel for schedule(static)
    for (uint32_t i = 0; i < N; ++i) {
        y[i] = a * x[i] + y[i];
    }
}
