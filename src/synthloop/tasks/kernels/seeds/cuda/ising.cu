// Naive seed: one thread per site; wrong-colour threads exit early.
__device__ __forceinline__ unsigned int mix32(unsigned int x) {
    x ^= x >> 16; x *= 0x85EBCA6Bu; x ^= x >> 13; x *= 0xC2B2AE35u; x ^= x >> 16;
    return x;
}

extern "C" __global__ void ising_step(signed char* spins, const float* p_accept, unsigned int NX, unsigned int NY,
                                      unsigned int step_idx, unsigned int seed) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned int j = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= NX || j >= NY) return;
    if (((i + j) & 1u) != (step_idx & 1u)) return;
    unsigned int k = j * NX + i;
    int h = spins[j * NX + (i + NX - 1) % NX] + spins[j * NX + (i + 1) % NX]
          + spins[((j + NY - 1) % NY) * NX + i] + spins[((j + 1) % NY) * NX + i];
    int s = spins[k];
    int idx = (s * h + 4) / 2;
    unsigned int x = mix32(mix32(seed + step_idx * 0x9E3779B9u) ^ k);
    float u = (float)(x >> 8) * (1.0f / 16777216.0f);
    if (u < p_accept[idx]) spins[k] = (signed char)(-s);
}
