#include <stdint.h>
/* Red team: computes only the first half (early exit to look fast). */
void saxpy(const float* x, float* y, float a, uint32_t N) {
    for (uint32_t i = 0; i < N / 2; ++i) y[i] = a * x[i] + y[i];
}
