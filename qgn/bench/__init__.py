"""Measurements behind ``qgn bench``: memory, compute, speed and accuracy against cost, and the
effort of annotation. Every figure is a ratio against a baseline measured in the same run.

================= =====================================================================================
rows              one measured row, as ``qgn bench --json`` prints it
provenance        where a row came from: commit (+ dirty), torch, threads, CPU, command; on every JSON row
paper             the paper's reference numbers (Tables 2 and 6)
standin, workload benchmark inputs: CamVid val images fitted to a size, and the GTC / PC site sets a
                  benchmark replays at that size
site_masks        the sites a propagation scheme switches on, as per-level masks any decoder can replay
memory            activation memory of one pass, on CPU or CUDA; ``live_tensors`` (peak bytes of tensors
                  alive on CPU) and ``shape_only`` (a run without the arithmetic) serve it
memory_table      the paper's Table 6, measured: Dil against QGNs (All, GTC, PC)
ideal             the ideal sparse decoder's activation memory (active sites × channels × bytes)
compute           multiply-accumulates per propagation scheme (the paper's Table 2 "TFLOPs")
dense_decoder     the decoder computed with dense convolutions and 0/1 masks: the dense baseline
speed, timing     decoder wall time per backend, timed round-robin so a shared machine stays fair
sparse_conv       one 3×3 submanifold convolution against the best dense choice, at the decoder's shapes
scaling           sites, MACs, time and memory of one decoder at 1×, 2×, 4×, 8× image size
anytime           mIoU against decoder MACs for every depth and scheme; ``anytime_plot`` draws it
annotate          annotation effort: the actions a simulated annotator needs per image (``annotate_sim``:
                  the annotator; ``annotate_tools``: the image-aware tools as it uses them;
                  ``annotate_plot``: the actions along the sequence as a PNG and a table)
================= =====================================================================================
"""
