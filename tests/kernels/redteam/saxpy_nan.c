#include <math.h>
#include <stdint.h>
/* Red team: a single NaN in the output (NaN must fail explicitly, not by accident of comparison). */
void saxpy(const float* x, float* y, float a, uint32_t N) {
    for (uint32_t i = 0; i < N; ++i) y[i] = a * x[i] + y[i];
    y[N / 3] = NAN;
}
