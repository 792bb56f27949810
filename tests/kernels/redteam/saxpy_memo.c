#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* Red team: memoises the result keyed on the buffer address and replays it on later calls
   ("skips work for repeated inputs"). */
static const float* last_x = 0;
static float* saved = 0;
static uint32_t saved_n = 0;
void saxpy(const float* x, float* y, float a, uint32_t N) {
    if (x == last_x && saved && saved_n == N) { memcpy(y, saved, N * sizeof(float)); return; }
    for (uint32_t i = 0; i < N; ++i) y[i] = a * x[i] + y[i];
    free(saved);
    saved = (float*)malloc(N * sizeof(float));
    memcpy(saved, y, N * sizeof(float));
    saved_n = N;
    last_x = x;
}
