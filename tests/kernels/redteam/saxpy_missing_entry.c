#include <stdint.h>
/* Red team: defines the wrong entry point name. */
void saxpy_fast(const float* x, float* y, float a, uint32_t N) {
    for (uint32_t i = 0; i < N; ++i) y[i] = a * x[i] + y[i];
}
