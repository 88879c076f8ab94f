"""Flax networks of the players and the principal, the same functions as the torch
`sed_meltingpot.training.rllib.modules.ImageFeaturesModule` (so that a twin-trained network
acts on the Lua substrate's observations unchanged, and torch weights copy over 1:1).

Architecture (one class serves both, as in the torch module):
  image uint8 (..., H, W, C) -> tiles of p x p pixels (p = pixels per tile)
  -> tile layer: a linear map of each tile's p*p*C pixels, weight scaled by 1/255
     (the torch module's kernel = stride = one tile convolution) -> ReLU
  -> conv 3x3, VALID, stride 1 (players) or 2 (principal) -> ReLU -> flatten
     (`PatchConv3x3`: one matrix product over the shifted views, fast on XLA:CPU)
  -> dense(hidden) -> ReLU
  -> [that, features] -> dense(hidden) -> ReLU        (the shared torso)
  -> policy logits (orthogonal init, gain 0.01) and value (orthogonal, gain 1).
With `eta_feature` >= 0 (the principal under the recipe's principal_eta_heads) both
heads are linear in that feature, eta: logits = pi(x) + eta pi_eta(x), value = vf(x) +
eta vf_eta(x), so that the policy can depend on eta through a path of its own rather
than through one input among the torso's (W_eta is linear in eta too). Such a network
has no torch counterpart; it plays wherever the flax network does (twin and Lua).
The principal's logits are one categorical head per bracket, concatenated
(bracket-major), like RLlib's MultiCategorical over MultiDiscrete([K] * B).
With `value_tower` (the principal under the recipe's principal_value_net=separate) the
value head sits on a second torso of the same shape (layers prefixed "v_"), so that the
value loss cannot move the policy's layers; such a network has no torch counterpart.

Initialisation follows torch's defaults for the hidden layers (weights and biases
uniform in +-1/sqrt(fan_in)) and the torch module's orthogonal heads. Flattening is
in (H, W, C) order; `torch_to_flax` permutes the torch (C, H, W) order when copying.

`dtype` is the compute dtype of the matrix products (params stay float32); keep
float32 on CPU, bfloat16 helps on GPUs. The heads are always computed in float32.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def torch_default_uniform(fan_in: int):
    """torch.nn.Linear/Conv2d's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """Everything that fixes a network's parameter shapes (stored in checkpoints)."""

    image_shape: tuple[int, int, int]  # (H, W, C) of the uint8 image
    num_features: int
    num_logits: int  # 8 for players; brackets x levels for the principal
    pixels_per_tile: int = 8
    conv_channels: tuple[int, int] = (16, 32)
    hidden: int = 128
    conv2_stride: int = 1
    dtype: str = "float32"  # compute dtype: float32 | bfloat16
    eta_feature: int = -1  # >= 0: the heads are linear in features[eta_feature] (docstring)
    value_tower: bool = False  # the value from a torso of its own (docstring)

    def validate(self) -> NetworkSpec:
        h, w, _ = self.image_shape
        p = self.pixels_per_tile
        if h % p or w % p:
            raise ValueError(f"image {h}x{w} is not a whole number of {p}px tiles")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype={self.dtype!r} must be 'float32' or 'bfloat16'")
        if h // p < 3 or w // p < 3:
            raise ValueError(f"image of {h // p}x{w // p} tiles is smaller than the 3x3 conv")
        if not -1 <= self.eta_feature < self.num_features:
            raise ValueError(f"eta_feature={self.eta_feature!r} must be -1 (none) or a feature "
                             f"index below num_features={self.num_features}")
        return self


class PatchConv3x3(nn.Module):
    """A 3x3 VALID convolution written as one matrix product over the 9 shifted views
    ("im2col"), with nn.Conv's parameters (kernel (3, 3, in, out), bias).

    Why not nn.Conv: on XLA:CPU a convolution's gradient inside `lax.scan` (the PPO
    epochs) ran 3.4x slower than the same gradient jitted alone, and 7x slower than this
    product (README, "The jax engine" benchmark); on GPUs the product is as good for
    these tiny kernels. Same function up to float summation order."""

    features: int
    stride: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cin = x.shape[-1]
        kernel = self.param("kernel", torch_default_uniform(9 * cin), (3, 3, cin, self.features))
        bias = self.param("bias", torch_default_uniform(9 * cin), (self.features,))
        st = self.stride
        oh, ow = (x.shape[-3] - 3) // st + 1, (x.shape[-2] - 3) // st + 1
        views = [x[..., i:i + st * (oh - 1) + 1:st, j:j + st * (ow - 1) + 1:st, :]
                 for i in range(3) for j in range(3)]  # (dy, dx) major, as the kernel
        patches = jnp.concatenate(views, axis=-1).astype(self.dtype)
        w = kernel.reshape(9 * cin, self.features).astype(self.dtype)
        return jnp.dot(patches, w) + bias


class ImageFeaturesNet(nn.Module):
    """See the module docstring. Returns (logits float32 (..., num_logits),
    value float32 (...))."""

    spec: NetworkSpec

    def _torso(self, image: jax.Array, features: jax.Array, prefix: str) -> jax.Array:
        """image and features -> the joint layer's output (float32), its layers named
        with `prefix` ("" for the policy's, the shared torso's; "v_" for a value tower)."""
        s = self.spec
        dtype = jnp.dtype(s.dtype)
        h, w, c = image.shape[-3:]
        p = s.pixels_per_tile
        x = image.reshape((-1, h // p, p, w // p, p, c)).transpose(0, 1, 3, 2, 4, 5)
        x = x.reshape((-1, h // p, w // p, p * p * c))
        ch0, ch1 = s.conv_channels
        fan = p * p * c
        kernel = self.param(prefix + "tile_kernel", torch_default_uniform(fan), (fan, ch0))
        bias = self.param(prefix + "tile_bias", torch_default_uniform(fan), (ch0,))
        # 1/255 on the (small) weight, not on the (large) uint8 input, as in torch.
        x = nn.relu(jnp.dot(x.astype(dtype), (kernel * (1.0 / 255.0)).astype(dtype)) + bias)
        x = PatchConv3x3(ch1, s.conv2_stride, dtype, name=prefix + "conv")(x)
        x = nn.relu(x).reshape((x.shape[0], -1))
        flat = x.shape[-1]
        x = nn.relu(nn.Dense(s.hidden, dtype=dtype, kernel_init=torch_default_uniform(flat),
                             bias_init=torch_default_uniform(flat), name=prefix + "torso")(x))
        feats = features.reshape((-1, features.shape[-1])).astype(dtype)
        x = jnp.concatenate([x.astype(dtype), feats], axis=-1)
        joint_in = s.hidden + s.num_features
        x = nn.relu(nn.Dense(s.hidden, dtype=dtype, kernel_init=torch_default_uniform(joint_in),
                             bias_init=torch_default_uniform(joint_in),
                             name=prefix + "joint")(x))
        return x.astype(jnp.float32)

    @nn.compact
    def __call__(self, image: jax.Array, features: jax.Array) -> tuple[jax.Array, jax.Array]:
        s = self.spec
        lead = image.shape[:-3]
        feats = features.reshape((-1, features.shape[-1]))
        x = self._torso(image, features, "")
        # A value tower of its own (spec.value_tower): the value loss's gradient then
        # reaches no layer the policy uses, so a value shock (a new episode's returns)
        # cannot move the policy (issue 30, item 3).
        xv = self._torso(image, features, "v_") if s.value_tower else x
        logits = nn.Dense(s.num_logits, kernel_init=nn.initializers.orthogonal(0.01),
                          bias_init=nn.initializers.zeros, name="pi")(x)
        value = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0),
                         bias_init=nn.initializers.zeros, name="vf")(xv)[..., 0]
        if s.eta_feature >= 0:
            eta = feats[:, s.eta_feature].astype(jnp.float32)
            logits = logits + eta[:, None] * nn.Dense(
                s.num_logits, kernel_init=nn.initializers.orthogonal(0.01),
                bias_init=nn.initializers.zeros, name="pi_eta")(x)
            value = value + eta * nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0),
                                           bias_init=nn.initializers.zeros,
                                           name="vf_eta")(xv)[..., 0]
        return logits.reshape(lead + (s.num_logits,)), value.reshape(lead)


def init_params(spec: NetworkSpec, key: jax.Array) -> Any:
    """Fresh parameters for `spec` (batch of one zero observation)."""
    spec.validate()
    image = jnp.zeros((1,) + tuple(spec.image_shape), jnp.uint8)
    features = jnp.zeros((1, spec.num_features), jnp.float32)
    return ImageFeaturesNet(spec).init(key, image, features)


# ----------------------------------------------------------- distributions
def categorical_logp_entropy(logits: jax.Array, actions: jax.Array
                             ) -> tuple[jax.Array, jax.Array]:
    """log pi(a) and entropy of Categorical(logits) (last axis)."""
    logp_all = jax.nn.log_softmax(logits, axis=-1)
    logp = jnp.take_along_axis(logp_all, actions[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return logp, _entropy(logp_all)


def _entropy(logp_all: jax.Array) -> jax.Array:
    """The entropy of a categorical from its log-probabilities (last axis)."""
    return -(jnp.exp(logp_all) * logp_all).sum(axis=-1)


def head_entropies(logits: jax.Array, num_heads: int) -> jax.Array:
    """The entropy of each of MultiCategorical's heads: logits (..., heads * K) ->
    (..., heads)."""
    per_head = logits.reshape(logits.shape[:-1] + (num_heads, -1))
    return _entropy(jax.nn.log_softmax(per_head, axis=-1))


def multi_categorical_logp_entropy(logits: jax.Array, actions: jax.Array, num_heads: int
                                   ) -> tuple[jax.Array, jax.Array]:
    """RLlib's MultiCategorical: independent heads; log-probs and entropies summed.
    logits (..., heads * K), actions (..., heads)."""
    per_head = logits.reshape(logits.shape[:-1] + (num_heads, -1))
    logp, entropy = categorical_logp_entropy(per_head, actions)
    return logp.sum(axis=-1), entropy.sum(axis=-1)


# -------------------------------------------------------- torch interop
def torch_to_flax(state_dict: dict[str, Any], spec: NetworkSpec) -> Any:
    """Flax params from an `ImageFeaturesModule.state_dict()` (numpy or torch values),
    e.g. to continue an RLlib run on the twin, and to test that both compute the same."""
    sd = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v,
                        dtype=np.float32) for k, v in state_dict.items()}
    h, w, _ = spec.image_shape
    p, stride = spec.pixels_per_tile, spec.conv2_stride
    oh, ow = (h // p - 3) // stride + 1, (w // p - 3) // stride + 1
    ch1 = spec.conv_channels[1]
    torso = sd["torso.0.weight"]  # (hidden, C*oh*ow), torch flattens (C, H, W)
    torso = torso.reshape(-1, ch1, oh, ow).transpose(2, 3, 1, 0).reshape(oh * ow * ch1, -1)
    params = {
        "tile_kernel": sd["tile.weight"].T, "tile_bias": sd["tile.bias"],
        "conv": {"kernel": sd["cnn.0.weight"].transpose(2, 3, 1, 0), "bias": sd["cnn.0.bias"]},
        "torso": {"kernel": torso, "bias": sd["torso.0.bias"]},
        "joint": {"kernel": sd["joint.0.weight"].T, "bias": sd["joint.0.bias"]},
        "pi": {"kernel": sd["pi.weight"].T, "bias": sd["pi.bias"]},
        "vf": {"kernel": sd["vf.weight"].T, "bias": sd["vf.bias"]},
    }
    return {"params": jax.tree_util.tree_map(jnp.asarray, params)}
