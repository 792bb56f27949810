#include <stddef.h>
#include <stdint.h>

static const int CX[9] = {0, 1, 0, -1, 0, 1, -1, -1, 1};
static const int CY[9] = {0, 0, 1, 0, -1, 1, 1, -1, -1};
static const float W[9] = {4.f/9, 1.f/9, 1.f/9, 1.f/9, 1.f/9, 1.f/36, 1.f/36, 1.f/36, 1.f/36};

/* Naive seed: pull-stream with modulo wrap, BGK collision, OpenMP over rows. */
void lbm_step(const float* f_in, float* f_out, uint32_t NX, uint32_t NY, float tau) {
    size_t plane = (size_t)NX * NY;
    #pragma omp parallel for schedule(static)
    for (uint32_t j = 0; j < NY; ++j) {
        for (uint32_t i = 0; i < NX; ++i) {
            float fs[9];
            float rho = 0.f, ux = 0.f, uy = 0.f;
            for (int k = 0; k < 9; ++k) {
                uint32_t si = (i + NX - CX[k]) % NX;
                uint32_t sj = (j + NY - CY[k]) % NY;
                float v = f_in[k * plane + (size_t)sj * NX + si];
                fs[k] = v;
                rho += v;
                ux += CX[k] * v;
                uy += CY[k] * v;
            }
            ux /= rho;
            uy /= rho;
            float usq = ux * ux + uy * uy;
            for (int k = 0; k < 9; ++k) {
                float cu = CX[k] * ux + CY[k] * uy;
                float feq = W[k] * rho * (1.f + 3.f * cu + 4.5f * cu * cu - 1.5f * usq);
                f_out[k * plane + (size_t)j * NX + i] = fs[k] - (fs[k] - feq) / tau;
            }
        }
    }
}
