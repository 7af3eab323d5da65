"""The network: a dense ResNet encoder and the sparse quadtree decoder (paper §3.2), their
assembly, files and baselines. Imports torch; the layers below it (``qgn.sparse``,
``qgn.propagation``, ``qgn.quadtree``) never import it back.

============ ==========================================================================================
qgn          ``QGN`` = encoder + decoder, its ``QGNConfig`` and the named presets
encoder      dense ResNet encoders behind one registry (no torchvision); features at strides 2 … 32
decoder      the sparse decoder, level 5 → 0: blocks of submanifold convolutions, a head per level,
             propagation (``qgn.propagation``) choosing the sites of the next level
checkpoint   model files: safetensors weights + JSON architecture and classes side by side (never pickle)
pretrained   ImageNet ResNet weights a user already has, loaded into our encoder (nothing is downloaded)
transfer     a model moved to a new class set: the head rows of classes it knows are kept
dilated      the paper's "Dil" baseline: dilated encoder, one 1×1 conv, bilinear upsampling
macs         multiply-accumulate counting of dense modules, by forward hooks
============ ==========================================================================================
"""
