// Naive seed: one block of 256 threads reduces the interior max; one thread per cell for the step.
extern "C" __global__ void gradshaf_axis_reduce(const float* psi, float* psi_axis, unsigned int NR, unsigned int NZ) {
    __shared__ float s[256];
    float m = __int_as_float(0xff800000);  // -inf (NVRTC has no INFINITY macro)
    unsigned int w = NR - 2, total = (NR - 2) * (NZ - 2);
    for (unsigned int t = threadIdx.x; t < total; t += blockDim.x) {
        unsigned int i = 1 + t % w, j = 1 + t / w;
        m = fmaxf(m, psi[j * NR + i]);
    }
    s[threadIdx.x] = m;
    __syncthreads();
    for (unsigned int h = blockDim.x / 2; h > 0; h >>= 1) {
        if (threadIdx.x < h) s[threadIdx.x] = fmaxf(s[threadIdx.x], s[threadIdx.x + h]);
        __syncthreads();
    }
    if (threadIdx.x == 0) psi_axis[0] = s[0];
}

extern "C" __global__ void gradshaf_step(const float* psi_in, float* psi_out, const float* psi_axis,
                                         unsigned int NR, unsigned int NZ, float p_axis) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned int j = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= NR || j >= NZ) return;
    unsigned int k = j * NR + i;
    if (i == 0 || j == 0 || i == NR - 1 || j == NZ - 1) { psi_out[k] = psi_in[k]; return; }
    float dR = 1.0f / (float)(NR - 1), dZ = 1.0f / (float)(NZ - 1);
    float R = 1.0f + (float)i * dR;
    float psi = psi_in[k];
    float pn = psi / psi_axis[0];
    float J = (pn > 0.f && pn < 1.f) ? R * p_axis * 4.0f * pn * (1.0f - pn) : 0.f;
    float rhs = -R * J;
    float idr2 = 1.0f / (dR * dR), idz2 = 1.0f / (dZ * dZ), half = 1.0f / (2.0f * R * dR);
    float aC = -2.0f * idr2 - 2.0f * idz2;
    float lap = (idr2 + half) * psi_in[k - 1] + (idr2 - half) * psi_in[k + 1]
              + idz2 * (psi_in[k - NR] + psi_in[k + NR]) + aC * psi;
    psi_out[k] = psi + (rhs - lap) / aC;
}
