// Naive seed: one chain per thread, runtime-d loops, A read from global memory (d even, <= 32).
#define D_MAX 32

__device__ __forceinline__ unsigned int mix32(unsigned int x) {
    x ^= x >> 16; x *= 0x85EBCA6Bu; x ^= x >> 13; x *= 0xC2B2AE35u; x ^= x >> 16;
    return x;
}

__device__ __forceinline__ float urand(unsigned int seed, unsigned int chain, unsigned int counter) {
    unsigned int x = seed + chain * 0x9E3779B9u;
    x = mix32(x ^ counter);
    x = mix32(x);
    return (float)(x >> 8) * (1.0f / 16777216.0f);
}

extern "C" __global__ void hmc_step(const float* q_in, float* q_out, unsigned int* accept_cnt, const float* A,
                                    unsigned int K, unsigned int d, unsigned int L, float eps,
                                    unsigned int step_idx, unsigned int seed) {
    unsigned int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= K) return;
    float q[D_MAX], q0[D_MAX], p[D_MAX], f[D_MAX];
    unsigned int base = step_idx * (d + 1);
    for (unsigned int i = 0; i < d; ++i) { q[i] = q_in[(size_t)c * d + i]; q0[i] = q[i]; }
    for (unsigned int i = 0; i < d; i += 2) {
        float u1 = fmaxf(urand(seed, c, base + i), 1e-7f);
        float u2 = urand(seed, c, base + i + 1);
        float r = sqrtf(-2.0f * logf(u1));
        float th = 6.283185307179586f * u2;
        p[i] = r * cosf(th);
        p[i + 1] = r * sinf(th);
    }
    for (unsigned int r = 0; r < d; ++r) { float s = 0.f; for (unsigned int k = 0; k < d; ++k) s += A[r * d + k] * q[k]; f[r] = s; }
    float U0 = 0.f, K0 = 0.f;
    for (unsigned int i = 0; i < d; ++i) { U0 += 0.5f * q[i] * f[i]; K0 += 0.5f * p[i] * p[i]; }
    for (unsigned int i = 0; i < d; ++i) p[i] -= 0.5f * eps * f[i];
    for (unsigned int l = 0; l < L; ++l) {
        for (unsigned int i = 0; i < d; ++i) q[i] += eps * p[i];
        for (unsigned int r = 0; r < d; ++r) { float s = 0.f; for (unsigned int k = 0; k < d; ++k) s += A[r * d + k] * q[k]; f[r] = s; }
        float s = (l == L - 1) ? 0.5f * eps : eps;
        for (unsigned int i = 0; i < d; ++i) p[i] -= s * f[i];
    }
    float U1 = 0.f, K1 = 0.f;
    for (unsigned int i = 0; i < d; ++i) { U1 += 0.5f * q[i] * f[i]; K1 += 0.5f * p[i] * p[i]; }
    float dH = (U1 + K1) - (U0 + K0);
    float u = urand(seed, c, base + d);
    bool acc = isfinite(dH) && logf(fmaxf(u, 1e-30f)) < -dH;
    for (unsigned int i = 0; i < d; ++i) q_out[(size_t)c * d + i] = acc ? q[i] : q0[i];
    accept_cnt[c] += acc ? 1u : 0u;
}
