// Naive seed: one thread per cell, pull-stream with modulo wrap, BGK collision.
__constant__ int CX[9] = {0, 1, 0, -1, 0, 1, -1, -1, 1};
__constant__ int CY[9] = {0, 0, 1, 0, -1, 1, 1, -1, -1};
__constant__ float W[9] = {4.f/9, 1.f/9, 1.f/9, 1.f/9, 1.f/9, 1.f/36, 1.f/36, 1.f/36, 1.f/36};

extern "C" __global__ void lbm_step(const float* f_in, float* f_out, unsigned int NX, unsigned int NY, float tau) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned int j = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= NX || j >= NY) return;
    size_t plane = (size_t)NX * NY;
    float fs[9];
    float rho = 0.f, ux = 0.f, uy = 0.f;
    for (int k = 0; k < 9; ++k) {
        unsigned int si = (i + NX - CX[k]) % NX;
        unsigned int sj = (j + NY - CY[k]) % NY;
        float v = f_in[k * plane + (size_t)sj * NX + si];
        fs[k] = v; rho += v; ux += CX[k] * v; uy += CY[k] * v;
    }
    ux /= rho; uy /= rho;
    float usq = ux * ux + uy * uy;
    for (int k = 0; k < 9; ++k) {
        float cu = CX[k] * ux + CY[k] * uy;
        float feq = W[k] * rho * (1.f + 3.f * cu + 4.5f * cu * cu - 1.5f * usq);
        f_out[k * plane + (size_t)j * NX + i] = fs[k] - (fs[k] - feq) / tau;
    }
}
