// Naive seed: one thread per cell, five global loads.
extern "C" __global__ void heat_step(const float* u_in, float* u_out, unsigned int NX, unsigned int NY, float alpha) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned int j = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= NX || j >= NY) return;
    unsigned int k = j * NX + i;
    if (i == 0 || j == 0 || i == NX - 1 || j == NY - 1) { u_out[k] = u_in[k]; return; }
    float c = u_in[k];
    u_out[k] = c + alpha * (u_in[k - 1] + u_in[k + 1] + u_in[k - NX] + u_in[k + NX] - 4.0f * c);
}
