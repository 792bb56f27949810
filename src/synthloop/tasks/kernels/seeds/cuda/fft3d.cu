// Naive seed: one block per line, bit-reversed load into shared memory, radix-2 stages with a barrier each.
__device__ void line_fft(const float2* in, float2* out, unsigned int N, size_t base, size_t stride) {
    __shared__ float2 buf[1024];
    unsigned int t = threadIdx.x;
    unsigned int logN = 31 - __clz(N);
    unsigned int r = __brev(t) >> (32 - logN);
    if (t < N) buf[r] = in[base + t * stride];
    __syncthreads();
    for (unsigned int m = 2; m <= N; m <<= 1) {
        unsigned int h = m >> 1;
        if (t < N / 2) {
            unsigned int grp = t / h, pos = t % h;
            unsigned int k = grp * m + pos;
            float s, c;
            sincosf(-6.283185307179586f * (float)pos / (float)m, &s, &c);
            float2 a = buf[k], b = buf[k + h];
            float2 x = make_float2(b.x * c - b.y * s, b.x * s + b.y * c);
            buf[k] = make_float2(a.x + x.x, a.y + x.y);
            buf[k + h] = make_float2(a.x - x.x, a.y - x.y);
        }
        __syncthreads();
    }
    if (t < N) out[base + t * stride] = buf[t];
}

extern "C" __global__ void fft3d_x(const float2* in, float2* out, unsigned int N) {
    size_t l = blockIdx.x;
    line_fft(in, out, N, l * N, 1);
}

extern "C" __global__ void fft3d_y(const float2* in, float2* out, unsigned int N) {
    size_t l = blockIdx.x;
    line_fft(in, out, N, (l / N) * N * N + (l % N), N);
}

extern "C" __global__ void fft3d_z(const float2* in, float2* out, unsigned int N) {
    size_t l = blockIdx.x;
    line_fft(in, out, N, l, (size_t)N * N);
}
