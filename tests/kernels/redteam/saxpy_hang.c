#include <stdint.h>
/* Red team: never returns. */
void saxpy(const float* x, float* y, float a, uint32_t N) {
    volatile uint32_t spin = 1;
    while (spin) { }
}
