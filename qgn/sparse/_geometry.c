/* Index kernels of a level's geometry (geometry_native.py): the two steps a propagation scheme runs
 * at every level, which as whole-tensor PyTorch ops cost more than the level's convolutions on a
 * thin quadtree band (a dozen ops over (K, 36) int64 tensors and an argsort, ~10-40 us each).
 *
 * upsample: the children of the selected parents (sites.py, `ActiveSites.upsample2x`), made in
 *   canonical (b, y, x) order without sorting: parents come sorted, so per run of parents on one
 *   image row y, row 2y of their children is the run's (2x, 2x + 1) pairs and row 2y + 1 the same.
 * child_table: the children's k x k neighbour table from the parents' 3 x 3 one (rulebook.py,
 *   `child_rulebook`): a child's neighbour at (dy, dx) is a child of the parent at
 *   (floor((a + dy) / 2), floor((b + dx) / 2)) from its own parent, for k <= 5.
 *
 * Every index read from a caller's array is checked before it is used as an address; a violation
 * returns -1 and writes nothing the caller keeps (the caller then raises). The GIL is released.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* upsample(parent_coords, num_parents, parent_ids, k, height, width, children, child_parent, made_at)
 *   parent_coords (Np, 3) int64 canonical; parent_ids (K,) int64 increasing, < Np;
 *   out: children (4K, 3) int64 canonical on (2H, 2W); child_parent (4K,) int64;
 *   made_at (4K,) int64: 4 i + 2 a + b for the child (a, b) of parent_ids[i] (what child_table reads).
 * Returns 0, or -1 if parent_ids are not increasing and in range or the parents not canonical. */
static int upsample(const int64_t *coords, int64_t np, const int64_t *ids, int64_t k, int64_t height,
                    int64_t width, int64_t *children, int64_t *child_parent, int64_t *made_at) {
    int64_t out = 0, previous_flat = -1, previous_id = -1;
    for (int64_t s = 0; s < k;) {
        int64_t p = ids[s];
        if (p <= previous_id || p >= np) return -1;
        int64_t b = coords[3 * p], y = coords[3 * p + 1];
        int64_t e = s; /* the run [s, e) of selected parents on image b, row y */
        for (; e < k; ++e) {
            int64_t q = ids[e];
            if (q <= previous_id || q >= np) return -1;
            int64_t x = coords[3 * q + 2];
            if (coords[3 * q] != b || coords[3 * q + 1] != y) break;
            int64_t flat = (b * height + y) * width + x;
            if (x < 0 || x >= width || y < 0 || y >= height || b < 0 || flat <= previous_flat) return -1;
            previous_flat = flat;
            previous_id = q;
        }
        for (int64_t a = 0; a < 2; ++a) {
            for (int64_t i = s; i < e; ++i) {
                int64_t q = ids[i], x = coords[3 * q + 2];
                for (int64_t c = 0; c < 2; ++c, ++out) {
                    children[3 * out] = b;
                    children[3 * out + 1] = 2 * y + a;
                    children[3 * out + 2] = 2 * x + c;
                    child_parent[out] = q;
                    made_at[out] = 4 * i + 2 * a + c;
                }
            }
        }
        s = e;
    }
    return 0;
}

/* child_table(parent_table, num_parents, parent_ids, k, made_at, kernel_size, table)
 *   parent_table (Np, 9) int32, Np where a neighbour is missing; parent_ids (K,) int64 < Np;
 *   made_at (n = 4K,) int64, a permutation of 0 … n-1 (upsample's); out: table (n, ks*ks) int32.
 * Returns the number of (input, output) pairs, or -1 on an index out of range. Scratch: rank (Np)
 * and site_of (n). */
static int64_t child_table(const int32_t *parent_table, int64_t np, const int64_t *ids, int64_t k,
                           const int64_t *made_at, int64_t ks, int32_t *table, int64_t *rank, int64_t *site_of) {
    const int64_t n = 4 * k, r = ks / 2, kk = ks * ks;
    for (int64_t p = 0; p < np; ++p) rank[p] = -1;
    for (int64_t i = 0; i < k; ++i) {
        if (ids[i] < 0 || ids[i] >= np) return -1;
        rank[ids[i]] = i;
    }
    for (int64_t s = 0; s < n; ++s) site_of[s] = -1;
    for (int64_t s = 0; s < n; ++s) {
        if (made_at[s] < 0 || made_at[s] >= n || site_of[made_at[s]] >= 0) return -1;
        site_of[made_at[s]] = s;
    }
    int64_t pairs = 0;
    for (int64_t s = 0; s < n; ++s) {
        int64_t m = made_at[s], a = (m >> 1) & 1, b = m & 1;
        const int32_t *row = parent_table + 9 * ids[m >> 2];
        int32_t *out = table + kk * s;
        for (int64_t i = 0; i < ks; ++i) {
            int64_t ty = a + i - r; /* in -2 … 3: the parent row is floor(ty / 2) */
            for (int64_t j = 0; j < ks; ++j) {
                int64_t tx = b + j - r;
                int64_t q = row[((ty + 2) >> 1) * 3 + ((tx + 2) >> 1)]; /* tap (floor(ty/2)+1, floor(tx/2)+1) */
                int32_t found = (int32_t)n;
                if (q < 0 || q > np) return -1;
                if (q < np && rank[q] >= 0) {
                    found = (int32_t)site_of[4 * rank[q] + ((ty + 2) & 1) * 2 + ((tx + 2) & 1)];
                    ++pairs;
                }
                out[i * ks + j] = found;
            }
        }
    }
    return pairs;
}

static PyObject *py_upsample(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_ssize_t coords, np, ids, k, height, width, children, child_parent, made_at;
    if (!PyArg_ParseTuple(args, "nnnnnnnnn", &coords, &np, &ids, &k, &height, &width, &children, &child_parent, &made_at))
        return NULL;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = upsample((const int64_t *)coords, np, (const int64_t *)ids, k, height, width, (int64_t *)children,
                      (int64_t *)child_parent, (int64_t *)made_at);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(status);
}

static PyObject *py_child_table(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_ssize_t parent_table, np, ids, k, made_at, ks, table;
    if (!PyArg_ParseTuple(args, "nnnnnnn", &parent_table, &np, &ids, &k, &made_at, &ks, &table)) return NULL;
    if (ks < 1 || ks > 5 || ks % 2 == 0) return PyErr_Format(PyExc_ValueError, "child_table needs a kernel of 1, 3 or 5, got %zd", ks);
    int64_t *rank = PyMem_Malloc((size_t)(np > 0 ? np : 1) * sizeof(int64_t));
    int64_t *site_of = PyMem_Malloc((size_t)(k > 0 ? 4 * k : 1) * sizeof(int64_t));
    if (!rank || !site_of) { PyMem_Free(rank); PyMem_Free(site_of); return PyErr_NoMemory(); }
    int64_t pairs;
    Py_BEGIN_ALLOW_THREADS
    pairs = child_table((const int32_t *)parent_table, np, (const int64_t *)ids, k, (const int64_t *)made_at, ks,
                        (int32_t *)table, rank, site_of);
    Py_END_ALLOW_THREADS
    PyMem_Free(rank);
    PyMem_Free(site_of);
    return PyLong_FromLongLong(pairs);
}

static PyMethodDef methods[] = {
    {"upsample", py_upsample, METH_VARARGS,
     "upsample(coords, np, ids, k, height, width, children, child_parent, made_at) -> 0 | -1: raw pointers"},
    {"child_table", py_child_table, METH_VARARGS,
     "child_table(parent_table, np, ids, k, made_at, kernel_size, table) -> pairs | -1: raw pointers"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_geometry", "Index kernels of a level's geometry (see _geometry.c).",
                                    -1, methods, NULL, NULL, NULL, NULL};

/* Raised whenever the Python side's contract with this file changes (geometry_native.KERNEL_ABI). */
#define ABI 1

PyMODINIT_FUNC PyInit__geometry(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "ABI", ABI) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
