// Naive seed: O(log N) bit loops for one decode and six encodes per thread.
__device__ unsigned int encode(unsigned int x, unsigned int y, unsigned int z, unsigned int logN) {
    unsigned int m = 0;
    for (unsigned int b = 0; b < logN; ++b) {
        m |= ((x >> b) & 1u) << (3 * b);
        m |= ((y >> b) & 1u) << (3 * b + 1);
        m |= ((z >> b) & 1u) << (3 * b + 2);
    }
    return m;
}

extern "C" __global__ void morton_stencil(const float* u_in, float* u_out, unsigned int N, unsigned int logN, float alpha) {
    unsigned int m = blockIdx.x * blockDim.x + threadIdx.x;
    if (m >= N * N * N) return;
    unsigned int x = 0, y = 0, z = 0;
    for (unsigned int b = 0; b < logN; ++b) {
        x |= ((m >> (3 * b)) & 1u) << b;
        y |= ((m >> (3 * b + 1)) & 1u) << b;
        z |= ((m >> (3 * b + 2)) & 1u) << b;
    }
    float c = u_in[m];
    if (x == 0 || y == 0 || z == 0 || x == N - 1 || y == N - 1 || z == N - 1) { u_out[m] = c; return; }
    float s = u_in[encode(x - 1, y, z, logN)] + u_in[encode(x + 1, y, z, logN)]
            + u_in[encode(x, y - 1, z, logN)] + u_in[encode(x, y + 1, z, logN)]
            + u_in[encode(x, y, z - 1, logN)] + u_in[encode(x, y, z + 1, logN)];
    u_out[m] = c + alpha * (s - 6.0f * c);
}
