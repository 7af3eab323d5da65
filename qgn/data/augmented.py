"""``AugmentedDataset``: a dataset view that applies the random training augmentation per sample.

The randomness of sample ``i`` in epoch ``e`` comes from ``numpy.random.default_rng((seed, e, i))``,
so results do not depend on DataLoader worker count or order, and every epoch differs.
"""
from __future__ import annotations

import numpy as np

from qgn.data.base import Sample, SegmentationDataset
from qgn.data.transforms import augment


class AugmentedDataset(SegmentationDataset):
    """``dataset`` with random scaling (``scale_range``) and horizontal flips applied on access.

    Call ``set_epoch(e)`` at the start of each epoch to draw new augmentations (with DataLoader
    workers, keep ``persistent_workers=False`` so the workers see the new epoch).
    """

    def __init__(
        self, dataset: SegmentationDataset, seed: int = 0,
        scale_range: tuple[float, float] = (0.5, 2.0), flip_probability: float = 0.5,
    ) -> None:
        self.dataset = dataset
        self.classes = dataset.classes
        self.seed = int(seed)
        self.scale_range = scale_range
        self.flip_probability = flip_probability
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Sample:
        index = index % len(self) if -len(self) <= index < 0 else index
        rng = np.random.default_rng((self.seed, self.epoch, index))
        return augment(self.dataset[index], rng, self.scale_range, self.flip_probability)
