/* Few-query attention for decoding on a CPU: softmax(scale q k^T, padding masked) v in one pass per (b, h).
 *
 * Why: at a decoding step each (row, head) has 1 query (greedy, self-attention) or G (a beam's queries of
 * one source) over a few dozen keys. PyTorch's CPU SDPA kernel runs two small GEMM calls and its buffers per
 * (row, head), which costs 2-3x the time of reading the keys and values once; this loop reads each key and
 * value row once, keeps the scores in a stack buffer and writes the output once.
 *
 * Compiled on first use by translate/attention/cpu_decode.py (cc -O3 -march=native -fopenmp, the host's
 * own instruction set), called through ctypes. Threads come from the OpenMP runtime PyTorch already loaded
 * (libgomp.so.1), num_threads = torch.get_num_threads().
 *
 * Layouts (strides in elements, the last dimension contiguous):
 *   q (B, H, T, D); k, v (B, H, S, D); pad (B, S) bytes, nonzero = ignore that key, or NULL;
 *   out (B, H, T, D) contiguous. A query that may see no key gets zeros (as the SDPA path's empty rows).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef TRANSLATE_NO_MVEC
/* glibc's vector expf (libmvec): lets the exp loop below vectorize without -ffast-math. */
#pragma omp declare simd notinbranch
extern float expf(float);
#endif

#define LOCAL 4096 /* scores held on the stack: T * S up to this, else one malloc per thread */

int translate_attend(const float *q, int64_t qsb, int64_t qsh, int64_t qst,
                     const float *k, int64_t ksb, int64_t ksh, int64_t kss,
                     const float *v, int64_t vsb, int64_t vsh, int64_t vss,
                     const uint8_t *pad, int64_t psb, float *out,
                     int64_t B, int64_t H, int64_t T, int64_t S, int64_t D, float scale, int threads) {
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float local[LOCAL];
        float *sc = T * S <= LOCAL ? local : (float *)malloc(sizeof(float) * T * S);
        if (!sc) failed = 1;
#pragma omp for collapse(2) schedule(static)
        for (int64_t b = 0; b < B; b++) {
            for (int64_t h = 0; h < H; h++) {
                if (!sc) continue;
                const float *qb = q + b * qsb + h * qsh, *kb = k + b * ksb + h * ksh, *vb = v + b * vsb + h * vsh;
                const uint8_t *pb = pad ? pad + b * psb : NULL;
                float *ob = out + (b * H + h) * T * D;
                int64_t seen = 0;
                for (int64_t s = 0; s < S; s++) { /* scores (T, S): each key row read once for all T */
                    if (pb && pb[s]) {
                        for (int64_t t = 0; t < T; t++) sc[t * S + s] = -INFINITY;
                        continue;
                    }
                    seen++;
                    const float *kr = kb + s * kss;
                    for (int64_t t = 0; t < T; t++) {
                        const float *qr = qb + t * qst;
                        float acc = 0.f;
#pragma omp simd reduction(+ : acc)
                        for (int64_t d = 0; d < D; d++) acc += qr[d] * kr[d];
                        sc[t * S + s] = acc * scale;
                    }
                }
                memset(ob, 0, sizeof(float) * T * D);
                if (!seen) continue;
                for (int64_t t = 0; t < T; t++) { /* softmax per query; masked keys give exp(-inf) = 0 */
                    float *st = sc + t * S, m = -INFINITY, sum = 0.f;
                    for (int64_t s = 0; s < S; s++) m = st[s] > m ? st[s] : m;
#pragma omp simd reduction(+ : sum)
                    for (int64_t s = 0; s < S; s++) {
                        st[s] = expf(st[s] - m);
                        sum += st[s];
                    }
                    const float inv = 1.f / sum;
                    for (int64_t s = 0; s < S; s++) st[s] *= inv;
                }
                for (int64_t s = 0; s < S; s++) { /* out = p v: each value row read once for all T */
                    if (pb && pb[s]) continue;
                    const float *vr = vb + s * vss;
                    for (int64_t t = 0; t < T; t++) {
                        const float p = sc[t * S + s];
                        float *o = ob + t * D;
#pragma omp simd
                        for (int64_t d = 0; d < D; d++) o[d] += p * vr[d];
                    }
                }
            }
        }
        if (sc && sc != local) free(sc);
    }
    return failed;
}
