#include <stdint.h>
/* Red team: does the real work only on every other call and copies otherwise (skipped work). */
static uint32_t calls = 0;
void heat_step(const float* u_in, float* u_out, uint32_t NX, uint32_t NY, float alpha) {
    uint32_t c = calls++;
    for (uint32_t j = 0; j < NY; ++j)
        for (uint32_t i = 0; i < NX; ++i) {
            uint32_t k = j * NX + i;
            if ((c & 1u) || i == 0 || j == 0 || i == NX - 1 || j == NY - 1) { u_out[k] = u_in[k]; continue; }
            u_out[k] = u_in[k] + alpha * (u_in[k - 1] + u_in[k + 1] + u_in[k - NX] + u_in[k + NX] - 4.0f * u_in[k]);
        }
}
