# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Cython + C kernels (first fused kernel; the full backend builds on this module)."""

cdef extern from "nn_fused.h":
    void nn_bias_tanh_f32(float *Z, const float *b, Py_ssize_t n_rows, Py_ssize_t n_cols) noexcept nogil
    void nn_bias_tanh_f64(double *Z, const double *b, Py_ssize_t n_rows, Py_ssize_t n_cols) noexcept nogil

ctypedef fused floating:
    float
    double


def inplace_bias_tanh(floating[:, ::1] Z, const floating[::1] b):
    """``Z <- tanh(Z + b)`` in place (row-broadcast bias), C-contiguous float32/float64."""
    if b.shape[0] != Z.shape[1]:
        raise ValueError(f"b has {b.shape[0]} entries but Z has {Z.shape[1]} columns")
    if Z.shape[0] == 0 or Z.shape[1] == 0:
        return
    with nogil:
        if floating is float:
            nn_bias_tanh_f32(&Z[0, 0], &b[0], Z.shape[0], Z.shape[1])
        else:
            nn_bias_tanh_f64(&Z[0, 0], &b[0], Z.shape[0], Z.shape[1])
