#include <stddef.h>
#include <stdint.h>

static inline uint32_t mix32(uint32_t x) {
    x ^= x >> 16; x *= 0x85EBCA6Bu; x ^= x >> 13; x *= 0xC2B2AE35u; x ^= x >> 16;
    return x;
}

/* Naive seed: visit every site, skip the wrong colour. */
void ising_step(signed char* spins, const float* p_accept, uint32_t NX, uint32_t NY, uint32_t step_idx, uint32_t seed) {
    uint32_t colour = step_idx & 1u;
    uint32_t h0 = mix32(seed + step_idx * 0x9E3779B9u);
    #pragma omp parallel for schedule(static)
    for (uint32_t j = 0; j < NY; ++j) {
        for (uint32_t i = 0; i < NX; ++i) {
            if (((i + j) & 1u) != colour) continue;
            uint32_t k = j * NX + i;
            int h = spins[j * NX + (i + NX - 1) % NX] + spins[j * NX + (i + 1) % NX]
                  + spins[((j + NY - 1) % NY) * NX + i] + spins[((j + 1) % NY) * NX + i];
            int s = spins[k];
            int idx = (s * h + 4) / 2;
            uint32_t x = mix32(h0 ^ k);
            float u = (float)(x >> 8) * (1.0f / 16777216.0f);
            if (u < p_accept[idx]) spins[k] = (signed char)(-s);
        }
    }
}
