/* A linear layer's product for inference on a CPU: y = x W^T + b (optionally ReLU), W packed in panels.
 *
 * Why: at a decoding step's rows (1 to a few hundred) MKL's sgemm on the 2-core AMD EPYC (Zen 2) gains
 * nothing from a second thread up to 4 rows and repacks W at every call; a 256 -> 8000 product of 4 rows
 * took 1.70 ms on two threads where this loop takes 0.30 (translate/models/README.md, "Small products on a
 * CPU").
 *
 * W (N, K) is packed once by cpu_linear.py into panels of WIDTH columns, (ceil(N / WIDTH), K, WIDTH), zero
 * padded, so each tile streams one contiguous panel. A tile keeps ROWS x WIDTH sums in registers over all K
 * (12 vector registers of 8 floats on AVX2, of 16 on AVX-512) and writes y once; each thread takes a run of
 * panels over every row chunk. GCC/Clang vector types, so the same source builds for AVX2, AVX-512 or NEON
 * through -march=native. Compiled and loaded by translate/native.py.
 *
 * Layouts (strides in elements): x (M, K) rows ldx apart; bias (ceil(N / WIDTH) * WIDTH) or NULL;
 * y (M, N) rows ldy apart.
 */
#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__)
#define LANES 16
#else
#define LANES 8
#endif
#define WIDTH (2 * LANES) /* columns per panel: two vectors */
#define ROWS 6            /* rows per tile */
#define CHUNK 48          /* at most this many rows per work item */

typedef float vf __attribute__((vector_size(4 * LANES)));
typedef int32_t vi __attribute__((vector_size(4 * LANES)));

static inline vf load(const float *p) { vf r; memcpy(&r, p, sizeof r); return r; }
static inline void store(float *p, vf r) { memcpy(p, &r, sizeof r); }

int translate_linear_width(void) { return WIDTH; }

/* rows x [0, rb) of one panel -> y's columns [0, cols) */
static inline __attribute__((always_inline)) void tile(int rb, const float *x, int64_t ldx, const float *w,
                                                       const float *b, float *y, int64_t ldy, int64_t K,
                                                       int64_t cols, int relu) {
    vf acc[ROWS][2];
    vf b0 = {0}, b1 = {0};
    if (b) { b0 = load(b); b1 = load(b + LANES); }
    for (int r = 0; r < rb; r++) { acc[r][0] = b0; acc[r][1] = b1; }
    for (int64_t k = 0; k < K; k++, w += WIDTH) {
        vf w0 = load(w), w1 = load(w + LANES);
        for (int r = 0; r < rb; r++) {
            float xs = x[r * ldx + k];
            acc[r][0] += xs * w0;
            acc[r][1] += xs * w1;
        }
    }
    for (int r = 0; r < rb; r++) {
        vf a0 = acc[r][0], a1 = acc[r][1];
        if (relu) {
            vf zero = {0};
            a0 = (vf)((vi)a0 & ~(a0 < zero)); /* negatives to 0, NaN kept (as F.relu) */
            a1 = (vf)((vi)a1 & ~(a1 < zero));
        }
        if (cols == WIDTH) {
            store(y + r * ldy, a0);
            store(y + r * ldy + LANES, a1);
        } else {
            float t[WIDTH];
            store(t, a0);
            store(t + LANES, a1);
            memcpy(y + r * ldy, t, sizeof(float) * cols);
        }
    }
}

void translate_linear(const float *x, int64_t ldx, const float *w, const float *b, float *y, int64_t ldy,
                      int64_t M, int64_t K, int64_t N, int relu, int threads) {
    int64_t panels = (N + WIDTH - 1) / WIDTH, chunks = (M + CHUNK - 1) / CHUNK;
    int64_t rows = (M + chunks - 1) / chunks;
    rows = (rows + ROWS - 1) / ROWS * ROWS; /* chunks of equal whole tiles: no thread gets a short tail */
    /* panel-major: each thread takes a run of panels over every chunk (equal shares, a panel read from L1/L2
     * for all chunks in turn) */
#pragma omp parallel for collapse(2) num_threads(threads) schedule(static)
    for (int64_t p = 0; p < panels; p++)
        for (int64_t c = 0; c < chunks; c++) {
            const float *wp = w + p * K * WIDTH, *bp = b ? b + p * WIDTH : 0;
            int64_t cols = N - p * WIDTH < WIDTH ? N - p * WIDTH : WIDTH;
            int64_t end = (c + 1) * rows < M ? (c + 1) * rows : M, r = c * rows;
            for (; r + ROWS <= end; r += ROWS)
                tile(ROWS, x + r * ldx, ldx, wp, bp, y + r * ldy + p * WIDTH, ldy, K, cols, relu);
            const float *xr = x + r * ldx;
            float *yr = y + r * ldy + p * WIDTH;
            switch (end - r) { /* constant row counts: each tile unrolled */
            case 5: tile(5, xr, ldx, wp, bp, yr, ldy, K, cols, relu); break;
            case 4: tile(4, xr, ldx, wp, bp, yr, ldy, K, cols, relu); break;
            case 3: tile(3, xr, ldx, wp, bp, yr, ldy, K, cols, relu); break;
            case 2: tile(2, xr, ldx, wp, bp, yr, ldy, K, cols, relu); break;
            case 1: tile(1, xr, ldx, wp, bp, yr, ldy, K, cols, relu); break;
            }
        }
}
