"""Torch RLModules for the players and the principal.

One class serves both: a CNN over `obs["image"]` (uint8 HWC, scaled to
[0, 1] here, so the env never ships floats) whose first layer reads one
tile per output cell (kernel = stride = pixels per tile), a dense layer,
the `obs["features"]` vector joined in, and two heads on the shared torso:
policy logits and the value (PPO's value loss is weighted by vf_loss_coeff).

The principal's action space is MultiDiscrete (one categorical head per
bracket over the rate levels): its logits are the concatenated heads and
its distribution RLlib's MultiCategorical.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sed_meltingpot.core.optional import extra_import

with extra_import("rllib", __name__):
    import gymnasium
    import torch
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.distribution.torch.torch_distribution import TorchMultiCategorical
    from ray.rllib.core.rl_module.apis import ValueFunctionAPI
    from ray.rllib.core.rl_module.torch import TorchRLModule
    from torch import nn


class ImageFeaturesModule(TorchRLModule, ValueFunctionAPI):
    """CNN(image) + features -> policy logits and value. `model_config` keys:
    `pixels_per_tile` (8), `conv_channels` ([16, 32]), `conv2_stride` (1),
    `hidden` (128)."""

    def setup(self) -> None:
        cfg: dict[str, Any] = dict(self.model_config or {})
        ppt = int(cfg.get("pixels_per_tile", 8))
        channels = list(cfg.get("conv_channels", [16, 32]))
        stride2 = int(cfg.get("conv2_stride", 1))
        hidden = int(cfg.get("hidden", 128))
        height, width, depth = self.observation_space["image"].shape
        num_features = self.observation_space["features"].shape[0]

        if height % ppt or width % ppt:
            raise ValueError(f"image {height}x{width} is not a whole number of {ppt}px tiles")
        self._ppt = ppt
        # The first layer is a convolution with kernel = stride = one tile,
        # written as a linear map of each tile's pixels: the same function,
        # but a plain matrix product instead of a strided conv2d on CPU.
        self.tile = nn.Linear(ppt * ppt * depth, channels[0])
        self.cnn = nn.Sequential(
            nn.Conv2d(channels[0], channels[1], kernel_size=3, stride=stride2), nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.cnn(torch.zeros(1, channels[0], height // ppt, width // ppt)).shape[1]
        self.torso = nn.Sequential(
            nn.Linear(flat, hidden), nn.ReLU(),
        )
        self.joint = nn.Sequential(nn.Linear(hidden + num_features, hidden), nn.ReLU())

        if isinstance(self.action_space, gymnasium.spaces.MultiDiscrete):
            sizes = [int(k) for k in np.asarray(self.action_space.nvec).ravel()]
            self.action_dist_cls = TorchMultiCategorical.get_partial_dist_cls(input_lens=sizes)
            num_logits = sum(sizes)
        else:
            num_logits = int(self.action_space.n)
        self.pi = nn.Linear(hidden, num_logits)
        self.vf = nn.Linear(hidden, 1)
        nn.init.orthogonal_(self.pi.weight, gain=0.01)
        nn.init.zeros_(self.pi.bias)
        nn.init.orthogonal_(self.vf.weight, gain=1.0)
        nn.init.zeros_(self.vf.bias)

    def _tiles(self, image: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) uint8 -> (B, H/p, W/p, p*p*C) floats in [0, 255]."""
        b, h, w, c = image.shape
        p = self._ppt
        if p > 1:
            image = image.reshape(b, h // p, p, w // p, p, c).permute(0, 1, 3, 2, 4, 5)
        return image.reshape(b, h // p, w // p, p * p * c).float()

    def _tile_layer(self, image: torch.Tensor) -> torch.Tensor:
        """The first layer on pixels scaled to [0, 1]; the 1/255 is applied to
        the (small) weight instead of the (large) input."""
        weight = self.tile.weight * (1.0 / 255.0)
        return torch.nn.functional.linear(self._tiles(image), weight, self.tile.bias)

    def _embed(self, batch: dict[str, Any]) -> torch.Tensor:
        obs = batch[Columns.OBS]
        x = torch.relu(self._tile_layer(obs["image"]))  # (B, h, w, channels[0])
        x = self.torso(self.cnn(x.permute(0, 3, 1, 2)))
        return self.joint(torch.cat([x, obs["features"].float()], dim=-1))

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self.pi(self._embed(batch))}

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        embeddings = self._embed(batch)
        return {Columns.ACTION_DIST_INPUTS: self.pi(embeddings), Columns.EMBEDDINGS: embeddings}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        if embeddings is None:
            embeddings = self._embed(batch)
        return self.vf(embeddings).squeeze(-1)
