#include <stdint.h>
/* Red team: correct y, plus a write past the end of the buffer (a vector tail done wrong). */
void saxpy(const float* x, float* y, float a, uint32_t N) {
    for (uint32_t i = 0; i < N; ++i) y[i] = a * x[i] + y[i];
    for (uint32_t i = N; i < N + 4; ++i) y[i] = 0.0f;
}
