#include <stddef.h>
#include <math.h>
#include <stdint.h>

#define MAX_PER_CELL 64

void lj_clear_cells(uint32_t* cell_count, uint32_t n_cells) {
    for (uint32_t c = 0; c < n_cells; ++c) cell_count[c] = 0;
}

static inline uint32_t cell_of(float x, float L, uint32_t M) {
    float w = x - L * floorf(x / L);
    uint32_t c = (uint32_t)(w / (L / (float)M));
    return c < M ? c : M - 1;
}

/* Naive seed: serial build (no atomics needed on one thread). */
void lj_build_cells(const float* pos, uint32_t* cell_count, uint32_t* cell_list, uint32_t N, uint32_t M, float L) {
    for (uint32_t i = 0; i < N; ++i) {
        uint32_t c = cell_of(pos[4 * i], L, M) + cell_of(pos[4 * i + 1], L, M) * M + cell_of(pos[4 * i + 2], L, M) * M * M;
        uint32_t slot = cell_count[c]++;
        if (slot < MAX_PER_CELL) cell_list[c * MAX_PER_CELL + slot] = i;
    }
}

void lj_step(const float* pos_in, float* pos_out, const float* vel_in, float* vel_out, const uint32_t* cell_count,
             const uint32_t* cell_list, uint32_t N, uint32_t M, float L, float dt) {
    const float rc2 = 2.5f * 2.5f;
    #pragma omp parallel for schedule(static)
    for (uint32_t i = 0; i < N; ++i) {
        float xi = pos_in[4 * i], yi = pos_in[4 * i + 1], zi = pos_in[4 * i + 2];
        int cx = (int)cell_of(xi, L, M), cy = (int)cell_of(yi, L, M), cz = (int)cell_of(zi, L, M);
        float fx = 0.f, fy = 0.f, fz = 0.f;
        for (int dz = -1; dz <= 1; ++dz)
        for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
            uint32_t c = (uint32_t)((cx + dx + (int)M) % (int)M) + (uint32_t)((cy + dy + (int)M) % (int)M) * M
                       + (uint32_t)((cz + dz + (int)M) % (int)M) * M * M;
            uint32_t cnt = cell_count[c] < MAX_PER_CELL ? cell_count[c] : MAX_PER_CELL;
            for (uint32_t t = 0; t < cnt; ++t) {
                uint32_t j = cell_list[c * MAX_PER_CELL + t];
                float rx = pos_in[4 * j] - xi, ry = pos_in[4 * j + 1] - yi, rz = pos_in[4 * j + 2] - zi;
                rx -= L * rintf(rx / L); ry -= L * rintf(ry / L); rz -= L * rintf(rz / L);
                float r2 = rx * rx + ry * ry + rz * rz;
                if (r2 < rc2 && r2 > 1e-12f) {
                    float inv2 = 1.0f / r2, inv6 = inv2 * inv2 * inv2;
                    float s = -24.0f * (2.0f * inv6 * inv6 - inv6) * inv2;
                    fx += s * rx; fy += s * ry; fz += s * rz;
                }
            }
        }
        float vx = vel_in[4 * i] + fx * dt, vy = vel_in[4 * i + 1] + fy * dt, vz = vel_in[4 * i + 2] + fz * dt;
        vel_out[4 * i] = vx; vel_out[4 * i + 1] = vy; vel_out[4 * i + 2] = vz; vel_out[4 * i + 3] = 0.f;
        pos_out[4 * i] = xi + vx * dt; pos_out[4 * i + 1] = yi + vy * dt; pos_out[4 * i + 2] = zi + vz * dt;
        pos_out[4 * i + 3] = 0.f;
    }
}
