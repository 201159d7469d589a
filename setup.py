"""Extension modules and compiler flags; all metadata lives in pyproject.toml."""

import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

if sys.platform == "win32":
    compile_args, link_args = ["/O2", "/openmp"], []
elif sys.platform == "darwin":
    # Apple clang has no -fopenmp; the C code falls back to serial loops without _OPENMP.
    compile_args, link_args = ["-O3"], []
else:
    compile_args, link_args = ["-O3", "-fopenmp"], ["-fopenmp"]

if os.environ.get("NNOPT_NATIVE") == "1":
    compile_args.append("-march=native")

extensions = [
    Extension(
        "nnopt_fast.kernels._cython",
        sources=["src/nnopt_fast/kernels/_cython.pyx", "csrc/nn_fused.c"],
        include_dirs=["csrc", np.get_include()],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives={"language_level": 3}))
