#include <stddef.h>
#include <stdint.h>

/* Naive seed: one pass over the grid per step, OpenMP over rows. */
void heat_step(const float* u_in, float* u_out, uint32_t NX, uint32_t NY, float alpha) {
    #pragma omp parallel for schedule(static)
    for (uint32_t j = 0; j < NY; ++j) {
        for (uint32_t i = 0; i < NX; ++i) {
            uint32_t k = j * NX + i;
            if (i == 0 || j == 0 || i == NX - 1 || j == NY - 1) {
                u_out[k] = u_in[k];
            } else {
                float c = u_in[k];
                u_out[k] = c + alpha * (u_in[k - 1] + u_in[k + 1] + u_in[k - NX] + u_in[k + NX] - 4.0f * c);
            }
        }
    }
}
