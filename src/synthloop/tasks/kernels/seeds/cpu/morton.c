#include <stddef.h>
#include <stdint.h>

static uint32_t encode(uint32_t x, uint32_t y, uint32_t z, uint32_t logN) {
    uint32_t m = 0;
    for (uint32_t b = 0; b < logN; ++b) {
        m |= ((x >> b) & 1u) << (3 * b);
        m |= ((y >> b) & 1u) << (3 * b + 1);
        m |= ((z >> b) & 1u) << (3 * b + 2);
    }
    return m;
}

/* Naive seed: decode the index with a bit loop, re-encode six neighbours. */
void morton_stencil(const float* u_in, float* u_out, uint32_t N, uint32_t logN, float alpha) {
    uint32_t total = N * N * N;
    #pragma omp parallel for schedule(static)
    for (uint32_t m = 0; m < total; ++m) {
        uint32_t x = 0, y = 0, z = 0;
        for (uint32_t b = 0; b < logN; ++b) {
            x |= ((m >> (3 * b)) & 1u) << b;
            y |= ((m >> (3 * b + 1)) & 1u) << b;
            z |= ((m >> (3 * b + 2)) & 1u) << b;
        }
        float c = u_in[m];
        if (x == 0 || y == 0 || z == 0 || x == N - 1 || y == N - 1 || z == N - 1) {
            u_out[m] = c;
            continue;
        }
        float s = u_in[encode(x - 1, y, z, logN)] + u_in[encode(x + 1, y, z, logN)]
                + u_in[encode(x, y - 1, z, logN)] + u_in[encode(x, y + 1, z, logN)]
                + u_in[encode(x, y, z - 1, logN)] + u_in[encode(x, y, z + 1, logN)];
        u_out[m] = c + alpha * (s - 6.0f * c);
    }
}
