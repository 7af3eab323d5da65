"""Segmentation metrics: confusion matrix, pixel accuracy and mean IoU (ignore excluded)."""
from __future__ import annotations

import numpy as np


class ConfusionMatrix:
    """Accumulates a (k, k) int64 confusion matrix: rows = ground truth, columns = prediction.

    Pixels whose ground truth is not a class 0..k-1 (the ignore value, padding) are skipped.
    """

    def __init__(self, num_classes: int):
        self.k = num_classes
        self.matrix = np.zeros((num_classes, num_classes), np.int64)

    def add(self, gt: np.ndarray, pred: np.ndarray) -> "ConfusionMatrix":
        gt, pred = np.asarray(gt).ravel().astype(np.int64), np.asarray(pred).ravel().astype(np.int64)
        if gt.shape != pred.shape:
            raise ValueError(f"ground truth and prediction differ in size: {gt.shape} vs {pred.shape}")
        keep = (gt >= 0) & (gt < self.k)
        if ((pred[keep] < 0) | (pred[keep] >= self.k)).any():
            raise ValueError(f"predicted classes must be in 0..{self.k - 1}")
        self.matrix += np.bincount(gt[keep] * self.k + pred[keep], minlength=self.k * self.k).reshape(self.k, self.k)
        return self

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        self.matrix += other.matrix
        return self

    def accuracy(self) -> float:
        """Correct pixels / counted pixels (0..1)."""
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")

    def iou(self) -> np.ndarray:
        """(k,) float64 IoU per class; NaN for classes absent from both ground truth and prediction."""
        tp = np.diag(self.matrix).astype(np.float64)
        denom = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, tp / denom, np.nan)

    def miou(self) -> float:
        """Mean IoU over classes present in ground truth or prediction (0..1)."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def to_json(self) -> dict:
        return {"acc": self.accuracy(), "miou": self.miou()}
