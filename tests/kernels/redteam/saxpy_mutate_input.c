#include <stdint.h>
/* Red team: correct y, but scribbles over the read-only input x. */
void saxpy(const float* x, float* y, float a, uint32_t N) {
    float* xm = (float*)x;
    for (uint32_t i = 0; i < N; ++i) { y[i] = a * x[i] + y[i]; xm[i] = 0.0f; }
}
