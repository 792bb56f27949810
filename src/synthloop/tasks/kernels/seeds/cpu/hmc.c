#include <stddef.h>
#include <math.h>
#include <stdint.h>

#define D_MAX 32

static inline uint32_t mix32(uint32_t x) {
    x ^= x >> 16; x *= 0x85EBCA6Bu; x ^= x >> 13; x *= 0xC2B2AE35u; x ^= x >> 16;
    return x;
}

static inline float urand(uint32_t seed, uint32_t chain, uint32_t counter) {
    uint32_t x = seed + chain * 0x9E3779B9u;
    x = mix32(x ^ counter);
    x = mix32(x);
    return (float)(x >> 8) * (1.0f / 16777216.0f);
}

static void matvec(const float* A, const float* q, float* f, uint32_t d) {
    for (uint32_t r = 0; r < d; ++r) {
        float s = 0.f;
        for (uint32_t c = 0; c < d; ++c) s += A[r * d + c] * q[c];
        f[r] = s;
    }
}

/* Naive seed: one chain per loop iteration, runtime-d loops over private arrays (d even, <= 32). */
void hmc_step(const float* q_in, float* q_out, uint32_t* accept_cnt, const float* A, uint32_t K, uint32_t d,
              uint32_t L, float eps, uint32_t step_idx, uint32_t seed) {
    #pragma omp parallel for schedule(static)
    for (uint32_t c = 0; c < K; ++c) {
        float q[D_MAX], q0[D_MAX], p[D_MAX], f[D_MAX];
        uint32_t base = step_idx * (d + 1);
        for (uint32_t i = 0; i < d; ++i) { q[i] = q_in[(size_t)c * d + i]; q0[i] = q[i]; }
        for (uint32_t i = 0; i < d; i += 2) {
            float u1 = fmaxf(urand(seed, c, base + i), 1e-7f);
            float u2 = urand(seed, c, base + i + 1);
            float r = sqrtf(-2.0f * logf(u1));
            float th = 6.283185307179586f * u2;
            p[i] = r * cosf(th);
            p[i + 1] = r * sinf(th);
        }
        matvec(A, q, f, d);
        float U0 = 0.f, K0 = 0.f;
        for (uint32_t i = 0; i < d; ++i) { U0 += 0.5f * q[i] * f[i]; K0 += 0.5f * p[i] * p[i]; }
        for (uint32_t i = 0; i < d; ++i) p[i] -= 0.5f * eps * f[i];
        for (uint32_t l = 0; l < L; ++l) {
            for (uint32_t i = 0; i < d; ++i) q[i] += eps * p[i];
            matvec(A, q, f, d);
            float s = (l == L - 1) ? 0.5f * eps : eps;
            for (uint32_t i = 0; i < d; ++i) p[i] -= s * f[i];
        }
        float U1 = 0.f, K1 = 0.f;
        for (uint32_t i = 0; i < d; ++i) { U1 += 0.5f * q[i] * f[i]; K1 += 0.5f * p[i] * p[i]; }
        float dH = (U1 + K1) - (U0 + K0);
        float u = urand(seed, c, base + d);
        int acc = isfinite(dH) && logf(fmaxf(u, 1e-30f)) < -dH;
        for (uint32_t i = 0; i < d; ++i) q_out[(size_t)c * d + i] = acc ? q[i] : q0[i];
        accept_cnt[c] += (uint32_t)acc;
    }
}
