"""Training and fine-tuning a QGN (imports torch).

============ ==========================================================================================
step         one optimisation step on a batch: the unit the loop, fine-tuning and tests share
loop         the training loop (supplement A.2): SGD + polynomial decay, augmentation, logs, checkpoints,
             resume (``qgn train``)
distributed  multi-process training on PyTorch's own engine: torchrun + DistributedDataParallel
finetune     fine-tuning on a user's corrected labels, the before/after comparison, saving under a new
             name (``qgn finetune``, the app's fine-tune panel)
adapt        the BatchNorm statistics re-estimated on a project's unlabelled images (AdaBN), no
             gradients
============ ==========================================================================================

The type and range of every setting a user can type are checked first (``qgn.bounds``).
"""
