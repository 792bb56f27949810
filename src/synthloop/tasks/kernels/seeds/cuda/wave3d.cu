// Naive seed: one thread per cell, 7-point stencil from global memory.
extern "C" __global__ void wave_step(const float* u_prev, const float* u_curr, float* u_next,
                                     unsigned int NX, unsigned int NY, unsigned int NZ, float alpha) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned int j = blockIdx.y * blockDim.y + threadIdx.y;
    unsigned int k = blockIdx.z * blockDim.z + threadIdx.z;
    if (i >= NX || j >= NY || k >= NZ) return;
    size_t idx = ((size_t)k * NY + j) * NX + i;
    float c = u_curr[idx];
    if (i == 0 || j == 0 || k == 0 || i == NX - 1 || j == NY - 1 || k == NZ - 1) { u_next[idx] = c; return; }
    size_t sxy = (size_t)NX * NY;
    float lap = u_curr[idx - 1] + u_curr[idx + 1] + u_curr[idx - NX] + u_curr[idx + NX]
              + u_curr[idx - sxy] + u_curr[idx + sxy] - 6.0f * c;
    u_next[idx] = 2.0f * c - u_prev[idx] + alpha * lap;
}
