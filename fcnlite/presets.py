"""Named training recipes.

reference_lr: the learning rates of the reference Caffe solvers (shelhamer/fcn.berkeleyvision.org),
which sum the loss over pixels (normalize=False) and use momentum 0.99 with one image per step.
A loss averaged over pixels has gradients ~1/(number of pixels) as large, so the equivalent
rate is multiplied by a typical VOC image's pixel count (500 x 375).
"""

REFERENCE_LR = {"fcn32s": 1e-10, "fcn16s": 1e-12, "fcn8s": 1e-14, "fcn8s-atonce": 1e-10}
VOC_PIXELS = 500 * 375


def reference_lr(model, normalized):
    lr = REFERENCE_LR[model]
    return lr * VOC_PIXELS if normalized else lr


# Small from-scratch recipes for a CPU: an FCN-8s at 1/8 width (a few hundred thousand
# parameters) learns the generated datasets in a few minutes on 2 cores.
PRESETS = {
    "quickstart": dict(model="fcn8s", width=0.125, lr=0.03, lr_policy="poly", momentum=0.9, weight_decay=5e-4,
                       loss_normalize=True, max_iter=1500, eval_every=500, checkpoint_every=500, max_side=96,
                       accumulate=1),
    "road": dict(model="fcn8s", width=0.125, lr=0.01, lr_policy="fixed", momentum=0.9, weight_decay=5e-4,
                 loss_normalize=True, max_iter=1500, eval_every=500, checkpoint_every=500, resize=(96, 128),
                 accumulate=1),
}
