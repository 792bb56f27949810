#include <stddef.h>
#include <math.h>
#include <stdint.h>

/* Naive seed: every body streams all N bodies. */
void nbody_step(const float* pos_in, float* pos_out, const float* vel_in, float* vel_out,
                const float* mass, uint32_t N, float dt, float eps, float G) {
    float e2 = eps * eps;
    #pragma omp parallel for schedule(static)
    for (uint32_t i = 0; i < N; ++i) {
        float xi = pos_in[4 * i], yi = pos_in[4 * i + 1], zi = pos_in[4 * i + 2];
        float ax = 0.f, ay = 0.f, az = 0.f;
        for (uint32_t j = 0; j < N; ++j) {
            float dx = pos_in[4 * j] - xi, dy = pos_in[4 * j + 1] - yi, dz = pos_in[4 * j + 2] - zi;
            float r2 = dx * dx + dy * dy + dz * dz + e2;
            float inv = 1.0f / sqrtf(r2 * r2 * r2);
            float s = mass[j] * inv;
            ax += dx * s; ay += dy * s; az += dz * s;
        }
        float vx = vel_in[4 * i] + G * ax * dt;
        float vy = vel_in[4 * i + 1] + G * ay * dt;
        float vz = vel_in[4 * i + 2] + G * az * dt;
        vel_out[4 * i] = vx; vel_out[4 * i + 1] = vy; vel_out[4 * i + 2] = vz; vel_out[4 * i + 3] = 0.f;
        pos_out[4 * i] = xi + vx * dt; pos_out[4 * i + 1] = yi + vy * dt; pos_out[4 * i + 2] = zi + vz * dt;
        pos_out[4 * i + 3] = 0.f;
    }
}
