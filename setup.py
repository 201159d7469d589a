"""Extension modules and compiler flags; all metadata lives in pyproject.toml.

Environment:
    NNOPT_NATIVE=1        add -march=native (local builds only: the result is not portable).
    NNOPT_NO_EXTENSION=1  build no extension at all (pure-Python install; the "cython"
                          backend then reports itself unavailable).
"""

import os
import sys

from setuptools import setup


def _extensions():
    if os.environ.get("NNOPT_NO_EXTENSION") == "1":
        return []
    import numpy as np
    from Cython.Build import cythonize
    from setuptools import Extension

    # No OpenMP runtime: the threaded epochs run on threads nnopt_fast starts itself
    # (kernels/team.py), which survive fork and never share a pool between fits.
    if sys.platform == "win32":
        compile_args, link_args = ["/O2"], []
    else:
        # -ffp-contract=off: no fused multiply-adds, so every operation rounds as NumPy's
        # does and float64 results match the reference to the last ulps.
        # -fno-math-errno: lets sqrt vectorize; results are unchanged.
        # -fopenmp-simd: only the `omp simd` loop pragmas (vectorized sums), no runtime.
        compile_args = ["-O3", "-fno-math-errno", "-ffp-contract=off", "-fopenmp-simd",
                        "-DNN_OPENMP_SIMD"]
        link_args = []
    if os.environ.get("NNOPT_NATIVE") == "1":
        compile_args.append("-march=native")
    ext = Extension(
        "nnopt_fast.kernels._cython",
        sources=["src/nnopt_fast/kernels/_cython.pyx", "csrc/nn_fused.c", "csrc/nn_parallel.c",
                 "csrc/nn_step.c", "csrc/nn_group.c"],
        include_dirs=["csrc", np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        depends=["csrc/nn_codes.h", "csrc/nn_fused.h", "csrc/nn_fused_impl.h",
                 "csrc/nn_gemm_impl.h", "csrc/nn_group.h", "csrc/nn_loss_impl.h",
                 "csrc/nn_math.h", "csrc/nn_small_impl.h",
                 "csrc/nn_parallel.h", "csrc/nn_step.h", "csrc/nn_step_impl.h",
                 "csrc/nn_workers_impl.h", "csrc/nn_forward_impl.h",
                 "src/nnopt_fast/kernels/_cython.pxd",
                 "src/nnopt_fast/kernels/_cython_kernels.pxi"],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    return cythonize([ext], compiler_directives={"language_level": 3})


setup(ext_modules=_extensions())
