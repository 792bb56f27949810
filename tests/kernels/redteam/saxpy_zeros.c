#include <stdint.h>
/* Red team: writes zeros (KernelBench #165: passes when tolerances are too loose). */
void saxpy(const float* x, float* y, float a, uint32_t N) {
    for (uint32_t i = 0; i < N; ++i) y[i] = 0.0f;
}
