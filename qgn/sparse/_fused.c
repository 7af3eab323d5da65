/* A fused gather-GEMM for the pure-PyTorch backend's submanifold convolution (fused_conv.py).
 *
 * out[s] = sum over taps t with table[s, t] < n of feats[table[s, t]] @ taps[t], for every site s:
 * the `gather` algorithm of torch_backend.py without its gathered block. Sites are taken in blocks
 * of R in the given `order` (the rulebook's sites sorted by which neighbours they have), so the R
 * sites of a block mostly share their taps: a tap no site of the block has is skipped, and a tap
 * some of them lack reads a zero row for those (wasted multiply-adds, few once sorted). Per block,
 * R x V vector accumulators (V = Cout / lanes) stay in registers over all taps and input channels;
 * each input channel loads one tap row of weights (V vectors) and broadcasts one value per site.
 *
 * One kernel per instruction set, compiled for it and chosen when the module loads: AVX-512
 * (16 floats a vector, 32 registers) and AVX2 + FMA (8 floats, 16 registers); `isa()` names the one
 * in use ("" where neither runs and the caller falls back to PyTorch). Cout is one of the
 * channel counts `kernel_for` lists (16 … 64: from 128 the backend's `taps` GEMMs measure faster);
 * Cin at most MAX_CIN. The caller (fused_conv.py) checks dtypes, shapes and contiguity, passes
 * the permutation `pattern_order` made as `order`, and raw pointers; the GIL is released while a
 * kernel runs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define MAX_CIN 1024
static const float ZERO_ROW[MAX_CIN];

typedef struct {
    const float *feats; int64_t n, cin, cout; const float *taps; const int32_t *table;
    const int32_t *order; int64_t kk; float *out;
    int64_t begin, end; /* the positions in `order` this call computes */
} conv_args;

typedef float vec16 __attribute__((vector_size(64)));
typedef float vec8 __attribute__((vector_size(32)));

/* One kernel: VT vectors of LANES floats, V of them per output row, R sites per block. */
#define DEFINE_KERNEL(NAME, VT, LANES, V, R)                                                                            \
static void NAME(const conv_args *a) {                                                                                  \
    const int64_t n = a->n, cin = a->cin, kk = a->kk, co = (LANES) * (V);                                               \
    for (int64_t s = a->begin; s < a->end; s += (R)) {                                                                  \
        VT acc[R][V];                                                                                                   \
        _Pragma("GCC unroll 16") for (int r = 0; r < (R); ++r)                                                          \
            _Pragma("GCC unroll 16") for (int v = 0; v < (V); ++v) acc[r][v] = (VT){0};                                 \
        for (int64_t t = 0; t < kk; ++t) {                                                                              \
            const float *x[R];                                                                                          \
            int any = 0;                                                                                                \
            for (int r = 0; r < (R); ++r) {                                                                             \
                int64_t j = s + r < a->end ? a->table[(int64_t)a->order[s + r] * kk + t] : n;                           \
                x[r] = j < n ? a->feats + j * cin : ZERO_ROW;                                                           \
                any |= j < n;                                                                                           \
            }                                                                                                           \
            if (!any) continue;                                                                                         \
            const float *w = a->taps + t * cin * co;                                                                    \
            for (int64_t i = 0; i < cin; ++i) {                                                                         \
                VT wv[V];                                                                                               \
                _Pragma("GCC unroll 16") for (int v = 0; v < (V); ++v) __builtin_memcpy(&wv[v], w + i * co + (LANES) * v, sizeof(VT)); \
                _Pragma("GCC unroll 16") for (int r = 0; r < (R); ++r) {                                                \
                    VT b = (VT){0} + x[r][i];                                                                           \
                    _Pragma("GCC unroll 16") for (int v = 0; v < (V); ++v) acc[r][v] += b * wv[v];                      \
                }                                                                                                       \
            }                                                                                                           \
        }                                                                                                               \
        for (int r = 0; r < (R) && s + r < a->end; ++r) {                                                               \
            float *o = a->out + (int64_t)a->order[s + r] * co;                                                          \
            _Pragma("GCC unroll 16") for (int v = 0; v < (V); ++v) __builtin_memcpy(o + (LANES) * v, &acc[r][v], sizeof(VT)); \
        }                                                                                                               \
    }                                                                                                                   \
}

/* R measured best with `qgn bench --only sparse_conv` on an AVX-512 Xeon (benchmarks/RESULTS.md);
 * the AVX2 kernel of two 8-float vectors also runs 16 channels under AVX-512 (33 against 29 GMAC/s
 * for one 16-float vector: with R pointers to broadcast from, a wider R ran out of registers) */
#pragma GCC push_options
#pragma GCC target("avx512f,fma")
DEFINE_KERNEL(avx512_v2, vec16, 16, 2, 8)
DEFINE_KERNEL(avx512_v3, vec16, 16, 3, 8)
DEFINE_KERNEL(avx512_v4, vec16, 16, 4, 6)
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
DEFINE_KERNEL(avx2_v2, vec8, 8, 2, 6)
DEFINE_KERNEL(avx2_v3, vec8, 8, 3, 4)
DEFINE_KERNEL(avx2_v4, vec8, 8, 4, 3)
DEFINE_KERNEL(avx2_v6, vec8, 8, 6, 2)
DEFINE_KERNEL(avx2_v8, vec8, 8, 8, 1)
#pragma GCC pop_options

typedef void (*kernel_fn)(const conv_args *);
#define MAX_COUT 64

static const char *isa_name = "";

static void choose_isa(const char *wanted) {
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (wanted && strcmp(wanted, "off") == 0) avx512 = avx2 = 0;
    else if (wanted && strcmp(wanted, "avx2") == 0) avx512 = 0;
    isa_name = avx512 ? "avx512" : avx2 ? "avx2" : "";
}

static kernel_fn kernel_for(int64_t cin, int64_t cout) {
    if (cin < 1 || cin > MAX_CIN || cout < 1 || cout > MAX_COUT) return NULL;
    if (strcmp(isa_name, "avx512") == 0) {
        switch (cout) {
        case 16: return avx2_v2;
        case 32: return avx512_v2;
        case 48: return avx512_v3;
        case 64: return avx512_v4;
        }
    } else if (strcmp(isa_name, "avx2") == 0) {
        switch (cout) {
        case 16: return avx2_v2;
        case 24: return avx2_v3;
        case 32: return avx2_v4;
        case 48: return avx2_v6;
        case 64: return avx2_v8;
        }
    }
    return NULL;
}

static PyObject *py_isa(PyObject *Py_UNUSED(self), PyObject *args) {
    const char *wanted = NULL;
    if (!PyArg_ParseTuple(args, "|z", &wanted)) return NULL;
    if (wanted) choose_isa(wanted);
    return PyUnicode_FromString(isa_name);
}

static PyObject *py_supports(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_ssize_t cin, cout;
    if (!PyArg_ParseTuple(args, "nn", &cin, &cout)) return NULL;
    return PyBool_FromLong(kernel_for(cin, cout) != NULL);
}

#define MAX_THREADS 64
typedef struct { kernel_fn fn; conv_args args; } job;

static void *run_job(void *arg) {
    job *j = (job *)arg;
    j->fn(&j->args);
    return NULL;
}

/* conv(..., threads): the sites split into `threads` runs of whole blocks, one POSIX thread each
 * (the calling thread runs the first); where a thread cannot start, its run is done in this one. */
static PyObject *py_conv(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_ssize_t feats, n, cin, cout, taps, table, order, kk, out, threads;
    if (!PyArg_ParseTuple(args, "nnnnnnnnnn", &feats, &n, &cin, &cout, &taps, &table, &order, &kk, &out, &threads))
        return NULL;
    kernel_fn fn = kernel_for(cin, cout);
    if (!fn) return PyErr_Format(PyExc_ValueError, "no %s kernel for %zd -> %zd channels", isa_name, cin, cout);
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    conv_args a = {(const float *)feats, n, cin, cout, (const float *)taps, (const int32_t *)table,
                   (const int32_t *)order, kk, (float *)out, 0, n};
    job jobs[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    int64_t step = (n + threads - 1) / threads; /* a run's last block may be short, as the last one is */
    int count = 0;
    for (int64_t begin = 0; begin < n && count < threads; begin += step, ++count) {
        jobs[count].fn = fn;
        jobs[count].args = a;
        jobs[count].args.begin = begin;
        jobs[count].args.end = begin + step < n ? begin + step : n;
    }
    Py_BEGIN_ALLOW_THREADS
    for (int i = 1; i < count; ++i) started[i] = pthread_create(&ids[i], NULL, run_job, &jobs[i]) == 0;
    if (count > 0) run_job(&jobs[0]);
    for (int i = 1; i < count; ++i) {
        if (started[i]) pthread_join(ids[i], NULL);
        else run_job(&jobs[i]);
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* order: the n sites stably sorted by their pattern of present neighbours (kk <= MAX_PATTERN_TAPS),
 * by a counting sort: O(n + 2^kk). */
#define MAX_PATTERN_TAPS 12
static PyObject *py_pattern_order(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_ssize_t table_ptr, n, kk, order_ptr;
    if (!PyArg_ParseTuple(args, "nnnn", &table_ptr, &n, &kk, &order_ptr)) return NULL;
    if (kk < 1 || kk > MAX_PATTERN_TAPS) return PyErr_Format(PyExc_ValueError, "pattern order needs 1..%d taps, got %zd", MAX_PATTERN_TAPS, kk);
    const int32_t *table = (const int32_t *)table_ptr;
    int32_t *order = (int32_t *)order_ptr;
    int64_t *start = PyMem_Calloc((size_t)1 << kk, sizeof(int64_t));
    uint16_t *pattern = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(uint16_t));
    if (!start || !pattern) { PyMem_Free(start); PyMem_Free(pattern); return PyErr_NoMemory(); }
    Py_BEGIN_ALLOW_THREADS
    for (int64_t s = 0; s < n; ++s) {
        unsigned p = 0;
        for (int64_t t = 0; t < kk; ++t) p |= (unsigned)(table[s * kk + t] < n) << t;
        pattern[s] = (uint16_t)p;
        start[p]++;
    }
    int64_t total = 0;
    for (int64_t p = 0; p < ((int64_t)1 << kk); ++p) { int64_t c = start[p]; start[p] = total; total += c; }
    for (int64_t s = 0; s < n; ++s) order[start[pattern[s]]++] = (int32_t)s;
    Py_END_ALLOW_THREADS
    PyMem_Free(start);
    PyMem_Free(pattern);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"isa", py_isa, METH_VARARGS, "isa(wanted=None) -> 'avx512' | 'avx2' | '': the kernels in use; "
                                  "wanted 'avx2' or 'off' restricts them (tests), 'auto' the best"},
    {"supports", py_supports, METH_VARARGS, "supports(cin, cout) -> bool"},
    {"conv", py_conv, METH_VARARGS, "conv(feats, n, cin, cout, taps, table, order, kk, out, threads): raw pointers"},
    {"pattern_order", py_pattern_order, METH_VARARGS, "pattern_order(table, n, kk, order): raw pointers"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fused", "Fused gather-GEMM kernels (see _fused.c).", -1, methods, NULL, NULL, NULL, NULL};

/* Raised whenever the Python side's contract with this file changes (fused_conv.KERNEL_ABI): a module
 * built from other sources - an editable install not rebuilt after a pull - is then not used. */
#define ABI 1

PyMODINIT_FUNC PyInit__fused(void) {
    choose_isa(getenv("QGN_FUSED_ISA"));
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "ABI", ABI) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
