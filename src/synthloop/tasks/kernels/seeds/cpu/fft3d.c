#include <stddef.h>
#include <math.h>
#include <stdint.h>

#define MAX_N 1024

/* Naive seed: per line, bit-reversed copy then radix-2 stages with sin/cos on the fly. */
static void line_fft(const float* in, float* out, uint32_t N, size_t base, size_t stride) {
    float re[MAX_N], im[MAX_N];
    uint32_t logN = 0;
    while ((1u << logN) < N) ++logN;
    for (uint32_t t = 0; t < N; ++t) {
        uint32_t r = 0;
        for (uint32_t b = 0; b < logN; ++b) r |= ((t >> b) & 1u) << (logN - 1 - b);
        re[r] = in[2 * (base + t * stride)];
        im[r] = in[2 * (base + t * stride) + 1];
    }
    for (uint32_t m = 2; m <= N; m <<= 1) {
        uint32_t h = m >> 1;
        for (uint32_t k = 0; k < N; k += m) {
            for (uint32_t t = 0; t < h; ++t) {
                float ang = -6.283185307179586f * (float)t / (float)m;
                float wr = cosf(ang), wi = sinf(ang);
                float xr = re[k + t + h] * wr - im[k + t + h] * wi;
                float xi = re[k + t + h] * wi + im[k + t + h] * wr;
                re[k + t + h] = re[k + t] - xr; im[k + t + h] = im[k + t] - xi;
                re[k + t] += xr; im[k + t] += xi;
            }
        }
    }
    for (uint32_t t = 0; t < N; ++t) {
        out[2 * (base + t * stride)] = re[t];
        out[2 * (base + t * stride) + 1] = im[t];
    }
}

void fft3d_x(const float* in, float* out, uint32_t N) {
    #pragma omp parallel for schedule(static)
    for (uint32_t l = 0; l < N * N; ++l) line_fft(in, out, N, (size_t)l * N, 1);
}

void fft3d_y(const float* in, float* out, uint32_t N) {
    #pragma omp parallel for schedule(static)
    for (uint32_t l = 0; l < N * N; ++l) line_fft(in, out, N, (size_t)(l / N) * N * N + (l % N), N);
}

void fft3d_z(const float* in, float* out, uint32_t N) {
    #pragma omp parallel for schedule(static)
    for (uint32_t l = 0; l < N * N; ++l) line_fft(in, out, N, (size_t)l, (size_t)N * N);
}
