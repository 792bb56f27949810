#include <stdint.h>
/* Red team: returns the input (copies u_in to u_out without computing). */
void heat_step(const float* u_in, float* u_out, uint32_t NX, uint32_t NY, float alpha) {
    for (uint32_t k = 0; k < NX * NY; ++k) u_out[k] = u_in[k];
}
