// Naive seed: one thread per line; thread 0 of each block computes c' into shared memory (MAX_AXIS 1024);
// the forward sweep streams d' through u_out and the backward sweep re-reads it.
#define MAX_AXIS 1024

__device__ void solve_line(const float* u_in, float* u_out, unsigned int n, size_t base, size_t stride, float mu,
                           const float* cp, bool copy) {
    if (copy) { for (unsigned int i = 0; i < n; ++i) u_out[base + i * stride] = u_in[base + i * stride]; return; }
    float b = 1.0f + 2.0f * mu;
    u_out[base] = u_in[base];
    u_out[base + (n - 1) * stride] = u_in[base + (n - 1) * stride];
    float dprev = 0.f;
    for (unsigned int i = 1; i + 1 < n; ++i) {
        float rhs = u_in[base + i * stride];
        if (i == 1) rhs += mu * u_in[base];
        if (i + 2 == n) rhs += mu * u_in[base + (n - 1) * stride];
        float den = (i == 1) ? b : b + mu * cp[i - 1];
        dprev = (i == 1) ? rhs / den : (rhs + mu * dprev) / den;
        u_out[base + i * stride] = dprev;
    }
    for (unsigned int i = n - 2; i >= 2; --i) u_out[base + (i - 1) * stride] -= cp[i - 1] * u_out[base + i * stride];
}

__device__ void fill_cp(float* cp, unsigned int n, float mu) {
    if (threadIdx.x == 0) {
        float b = 1.0f + 2.0f * mu, c = 0.f;
        for (unsigned int i = 1; i + 1 < n; ++i) { float den = (i == 1) ? b : b + mu * c; c = -mu / den; cp[i] = c; }
    }
    __syncthreads();
}

extern "C" __global__ void adi_x(const float* u_in, float* u_out, unsigned int NX, unsigned int NY, unsigned int NZ, float mu) {
    __shared__ float cp[MAX_AXIS];
    fill_cp(cp, NX, mu);
    unsigned int j = blockIdx.x * blockDim.x + threadIdx.x, k = blockIdx.y;
    if (j >= NY || k >= NZ) return;
    solve_line(u_in, u_out, NX, ((size_t)k * NY + j) * NX, 1, mu, cp, j == 0 || k == 0 || j == NY - 1 || k == NZ - 1);
}

extern "C" __global__ void adi_y(const float* u_in, float* u_out, unsigned int NX, unsigned int NY, unsigned int NZ, float mu) {
    __shared__ float cp[MAX_AXIS];
    fill_cp(cp, NY, mu);
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x, k = blockIdx.y;
    if (i >= NX || k >= NZ) return;
    solve_line(u_in, u_out, NY, (size_t)k * NY * NX + i, NX, mu, cp, i == 0 || k == 0 || i == NX - 1 || k == NZ - 1);
}

extern "C" __global__ void adi_z(const float* u_in, float* u_out, unsigned int NX, unsigned int NY, unsigned int NZ, float mu) {
    __shared__ float cp[MAX_AXIS];
    fill_cp(cp, NZ, mu);
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x, j = blockIdx.y;
    if (i >= NX || j >= NY) return;
    solve_line(u_in, u_out, NZ, (size_t)j * NX + i, (size_t)NX * NY, mu, cp, i == 0 || j == 0 || i == NX - 1 || j == NY - 1);
}
