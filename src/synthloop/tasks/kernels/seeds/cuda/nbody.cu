// Naive seed: each thread streams all N bodies from global memory.
extern "C" __global__ void nbody_step(const float4* pos_in, float4* pos_out, const float4* vel_in, float4* vel_out,
                                      const float* mass, unsigned int N, float dt, float eps, float G) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) return;
    float4 pi = pos_in[i];
    float e2 = eps * eps;
    float ax = 0.f, ay = 0.f, az = 0.f;
    for (unsigned int j = 0; j < N; ++j) {
        float4 pj = pos_in[j];
        float dx = pj.x - pi.x, dy = pj.y - pi.y, dz = pj.z - pi.z;
        float r2 = dx * dx + dy * dy + dz * dz + e2;
        float s = mass[j] * rsqrtf(r2 * r2 * r2);
        ax += dx * s; ay += dy * s; az += dz * s;
    }
    float4 v = vel_in[i];
    v.x += G * ax * dt; v.y += G * ay * dt; v.z += G * az * dt; v.w = 0.f;
    vel_out[i] = v;
    pos_out[i] = make_float4(pi.x + v.x * dt, pi.y + v.y * dt, pi.z + v.z * dt, 0.f);
}
