#include <stdint.h>
/* Red team: dereferences a null pointer on the larger sizes only (so the crash is attributed per size). */
void saxpy(const float* x, float* y, float a, uint32_t N) {
    for (uint32_t i = 0; i < N; ++i) y[i] = a * x[i] + y[i];
    if (N > 5000) { volatile float* p = 0; *p = 1.0f; }
}
