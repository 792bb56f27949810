// Naive seed: atomic cell build, one thread per particle walking 27 cells.
#define MAX_PER_CELL 64

__device__ __forceinline__ unsigned int cell_of(float x, float L, unsigned int M) {
    float w = x - L * floorf(x / L);
    unsigned int c = (unsigned int)(w / (L / (float)M));
    return c < M ? c : M - 1;
}

extern "C" __global__ void lj_clear_cells(unsigned int* cell_count, unsigned int n_cells) {
    unsigned int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c < n_cells) cell_count[c] = 0;
}

extern "C" __global__ void lj_build_cells(const float4* pos, unsigned int* cell_count, unsigned int* cell_list,
                                          unsigned int N, unsigned int M, float L) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) return;
    float4 p = pos[i];
    unsigned int c = cell_of(p.x, L, M) + cell_of(p.y, L, M) * M + cell_of(p.z, L, M) * M * M;
    unsigned int slot = atomicAdd(&cell_count[c], 1u);
    if (slot < MAX_PER_CELL) cell_list[c * MAX_PER_CELL + slot] = i;
}

extern "C" __global__ void lj_step(const float4* pos_in, float4* pos_out, const float4* vel_in, float4* vel_out,
                                   const unsigned int* cell_count, const unsigned int* cell_list,
                                   unsigned int N, unsigned int M, float L, float dt) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) return;
    const float rc2 = 2.5f * 2.5f;
    float4 pi = pos_in[i];
    int cx = (int)cell_of(pi.x, L, M), cy = (int)cell_of(pi.y, L, M), cz = (int)cell_of(pi.z, L, M);
    float fx = 0.f, fy = 0.f, fz = 0.f;
    for (int dz = -1; dz <= 1; ++dz)
    for (int dy = -1; dy <= 1; ++dy)
    for (int dx = -1; dx <= 1; ++dx) {
        unsigned int c = (unsigned int)((cx + dx + (int)M) % (int)M) + (unsigned int)((cy + dy + (int)M) % (int)M) * M
                       + (unsigned int)((cz + dz + (int)M) % (int)M) * M * M;
        unsigned int cnt = min(cell_count[c], (unsigned int)MAX_PER_CELL);
        for (unsigned int t = 0; t < cnt; ++t) {
            float4 pj = pos_in[cell_list[c * MAX_PER_CELL + t]];
            float rx = pj.x - pi.x, ry = pj.y - pi.y, rz = pj.z - pi.z;
            rx -= L * rintf(rx / L); ry -= L * rintf(ry / L); rz -= L * rintf(rz / L);
            float r2 = rx * rx + ry * ry + rz * rz;
            if (r2 < rc2 && r2 > 1e-12f) {
                float inv2 = 1.0f / r2, inv6 = inv2 * inv2 * inv2;
                float s = -24.0f * (2.0f * inv6 * inv6 - inv6) * inv2;
                fx += s * rx; fy += s * ry; fz += s * rz;
            }
        }
    }
    float4 v = vel_in[i];
    v.x += fx * dt; v.y += fy * dt; v.z += fz * dt; v.w = 0.f;
    vel_out[i] = v;
    pos_out[i] = make_float4(pi.x + v.x * dt, pi.y + v.y * dt, pi.z + v.z * dt, 0.f);
}
