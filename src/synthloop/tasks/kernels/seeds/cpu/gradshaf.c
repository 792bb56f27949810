#include <stddef.h>
#include <math.h>
#include <stdint.h>

/* Naive seed: serial max over the interior. */
void gradshaf_axis_reduce(const float* psi, float* psi_axis, uint32_t NR, uint32_t NZ) {
    float m = -INFINITY;
    for (uint32_t j = 1; j + 1 < NZ; ++j)
        for (uint32_t i = 1; i + 1 < NR; ++i)
            m = fmaxf(m, psi[j * NR + i]);
    psi_axis[0] = m;
}

void gradshaf_step(const float* psi_in, float* psi_out, const float* psi_axis, uint32_t NR, uint32_t NZ, float p_axis) {
    float dR = 1.0f / (float)(NR - 1), dZ = 1.0f / (float)(NZ - 1);
    float axis = psi_axis[0];
    #pragma omp parallel for schedule(static)
    for (uint32_t j = 0; j < NZ; ++j) {
        for (uint32_t i = 0; i < NR; ++i) {
            uint32_t k = j * NR + i;
            if (i == 0 || j == 0 || i == NR - 1 || j == NZ - 1) { psi_out[k] = psi_in[k]; continue; }
            float R = 1.0f + (float)i * dR;
            float psi = psi_in[k];
            float pn = psi / axis;
            float J = (pn > 0.f && pn < 1.f) ? R * p_axis * 4.0f * pn * (1.0f - pn) : 0.f;
            float rhs = -R * J;
            float idr2 = 1.0f / (dR * dR), idz2 = 1.0f / (dZ * dZ), half = 1.0f / (2.0f * R * dR);
            float aC = -2.0f * idr2 - 2.0f * idz2;
            float lap = (idr2 + half) * psi_in[k - 1] + (idr2 - half) * psi_in[k + 1]
                      + idz2 * (psi_in[k - NR] + psi_in[k + NR]) + aC * psi;
            psi_out[k] = psi + (rhs - lap) / aC;
        }
    }
}
