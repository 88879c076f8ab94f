"""The RLModule: its tile layer is a convolution; heads have the right sizes."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ray")

from ray.rllib.core.columns import Columns  # noqa: E402

from sed_meltingpot.training.rllib.modules import ImageFeaturesModule  # noqa: E402


def space(h, w, c, f):
    return gymnasium.spaces.Dict({
        "image": gymnasium.spaces.Box(0, 255, (h, w, c), np.uint8),
        "features": gymnasium.spaces.Box(-np.inf, np.inf, (f,), np.float32)})


@pytest.mark.parametrize("ppt", [8, 1])
def test_tile_layer_equals_a_strided_convolution(ppt):
    module = ImageFeaturesModule(observation_space=space(11 * ppt, 11 * ppt, 12, 6),
                                 action_space=gymnasium.spaces.Discrete(8),
                                 model_config={"pixels_per_tile": ppt})
    image = torch.randint(0, 256, (5, 11 * ppt, 11 * ppt, 12), dtype=torch.uint8)
    conv = torch.nn.Conv2d(12, 16, kernel_size=ppt, stride=ppt)
    # Tile features are ordered (row, column, channel) within the tile.
    conv.weight.data = module.tile.weight.detach().reshape(16, ppt, ppt, 12).permute(0, 3, 1, 2)
    conv.bias.data = module.tile.bias.detach().clone()
    expected = conv(image.float().permute(0, 3, 1, 2) / 255.0)
    got = module._tile_layer(image).permute(0, 3, 1, 2)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_principal_head_is_one_categorical_per_bracket():
    action_space = gymnasium.spaces.MultiDiscrete([11, 11, 11])
    module = ImageFeaturesModule(observation_space=space(144, 192, 3, 20),
                                 action_space=action_space,
                                 model_config={"pixels_per_tile": 8, "conv2_stride": 2})
    batch = {Columns.OBS: {"image": torch.zeros(4, 144, 192, 3, dtype=torch.uint8),
                           "features": torch.zeros(4, 20)}}
    out = module.forward_train(batch)
    assert out[Columns.ACTION_DIST_INPUTS].shape == (4, 33)
    dist = module.get_train_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
    sample = dist.sample()
    assert sample.shape == (4, 3) and int(sample.max()) <= 10
    assert module.compute_values(batch).shape == (4,)
