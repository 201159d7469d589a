#ifndef NNOPT_NN_CODES_H_
#define NNOPT_NN_CODES_H_

/*
 * The integer codes of nnopt_fast.kernels.codes, the one definition. The extension
 * reports the values it was compiled with (_cython.codes()), and a test compares them
 * with the Python tables.
 */

/* Hidden activations (codes.ACTIVATIONS). */
#define NN_ACT_IDENTITY 0
#define NN_ACT_TANH 1
#define NN_ACT_RELU 2
#define NN_ACT_LOGISTIC 3

/* Output layers (codes.OUTPUTS). */
#define NN_OUT_SOFTMAX 0
#define NN_OUT_LOGISTIC 1
#define NN_OUT_IDENTITY 2
#define NN_OUT_EXP 3

/* Optimizers (codes.OPTIMIZERS). */
#define NN_OPT_SGD 0
#define NN_OPT_MOMENTUM 1
#define NN_OPT_NESTEROV 2
#define NN_OPT_ADAM 3

/* Workspace layouts (plan.LAYOUTS). */
#define NN_LAYOUT_ROWS 0
#define NN_LAYOUT_FEATURES 1

/* What an epoch returns (codes.STATUS). */
#define NN_STATUS_OK 0
#define NN_STATUS_NONFINITE 1
#define NN_STATUS_ZERO_WEIGHT 2
#define NN_STATUS_INTERRUPTED 3

#endif /* NNOPT_NN_CODES_H_ */
