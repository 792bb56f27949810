#include <stddef.h>
#include <stdint.h>

/* Naive seed: 7-point leapfrog, OpenMP over z-planes. */
void wave_step(const float* u_prev, const float* u_curr, float* u_next,
               uint32_t NX, uint32_t NY, uint32_t NZ, float alpha) {
    #pragma omp parallel for schedule(static)
    for (uint32_t k = 0; k < NZ; ++k) {
        for (uint32_t j = 0; j < NY; ++j) {
            for (uint32_t i = 0; i < NX; ++i) {
                size_t idx = ((size_t)k * NY + j) * NX + i;
                float c = u_curr[idx];
                if (i == 0 || j == 0 || k == 0 || i == NX - 1 || j == NY - 1 || k == NZ - 1) {
                    u_next[idx] = c;
                } else {
                    size_t sxy = (size_t)NX * NY;
                    float lap = u_curr[idx - 1] + u_curr[idx + 1] + u_curr[idx - NX] + u_curr[idx + NX]
                              + u_curr[idx - sxy] + u_curr[idx + sxy] - 6.0f * c;
                    u_next[idx] = 2.0f * c - u_prev[idx] + alpha * lap;
                }
            }
        }
    }
}
