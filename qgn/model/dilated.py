"""The paper's "Dil" baseline (§4.4): dilated encoder + one 1x1 conv + bilinear upsampling.

The encoder is ``build_encoder(name, width, dilated=True)``: the same ResNet code as the QGN encoder
with its last two stages (Block3, Block4) dilated, so the deepest features are at stride 8. A
single 1x1 convolution maps them to ``k`` class logits, which are bilinearly upsampled to the
input size. ``decoder_forward`` is the decoder alone (1x1 conv + upsampling), so a benchmark can
measure the "Decoder Only" memory of Table 6 separately from the encoder.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qgn.model.encoder import Encoder, build_encoder


class DilatedBaseline(nn.Module):
    """Dilated ResNet (output stride 8) + 1x1 conv classifier + bilinear upsampling.

    encoder_name: a name from ``qgn.model.encoder.list_encoders()``.
    num_classes:  k, the number of output logits per pixel.
    width:        encoder channel multiplier (see ``build_encoder``).

    ``forward(x: (B, 3, H, W) float32) -> (B, k, H, W) float32`` logits; H, W multiples of 8.
    """

    def __init__(self, encoder_name: str, num_classes: int, width: float = 1.0) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes: int = int(num_classes)
        self.encoder: Encoder = build_encoder(encoder_name, width=width, dilated=True)
        self.head = nn.Conv2d(self.encoder.out_channels[-1], self.num_classes, kernel_size=1)

    @property
    def output_stride(self) -> int:
        """Downsampling factor of the features the head sees (8)."""
        return self.encoder.output_stride

    def decoder_forward(
        self, feats: list[torch.Tensor], out_size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Logits from encoder features: 1x1 conv on the stride-8 map, bilinear upsampling.

        feats:    the encoder's output list; only ``feats[-1]: (B, C, H/8, W/8)`` is used.
        out_size: (H, W) of the result; default ``output_stride`` times the feature size.
        Returns ``(B, k, H, W)`` float32.
        """
        deepest = feats[-1]
        if out_size is None:
            s = self.output_stride
            out_size = (int(deepest.shape[2]) * s, int(deepest.shape[3]) * s)
        logits = self.head(deepest)
        return F.interpolate(logits, size=out_size, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        return self.decoder_forward(feats, out_size=(int(x.shape[2]), int(x.shape[3])))
