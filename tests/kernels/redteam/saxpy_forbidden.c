#include <stdint.h>
#include <stdlib.h>
#include <time.h>
/* Red team: reads a clock and spawns a process (timer tricks, escaping the sandbox). */
void saxpy(const float* x, float* y, float a, uint32_t N) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    system("true");
    for (uint32_t i = 0; i < N; ++i) y[i] = a * x[i] + y[i];
}
