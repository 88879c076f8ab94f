"""PPO learner whose minibatches are sized per module.

RLlib's `MiniBatchCyclicIterator` gives every module `minibatch_size`
samples in every minibatch and cycles a small module's data to fill them.
The principal decides once per tax period (4 decisions per 200-step
fragment), so its few samples were each trained on hundreds of times per
iteration. Here each module is cut into its own minibatch size, every sample
is used exactly `num_epochs` times per update, and a module whose data runs
out first simply sits out the remaining minibatches.

Only rows that enter the loss are cut: RLlib appends one time step per
episode chunk to bootstrap the value and masks it out of the loss
(`loss_mask`), so a chunk of masked rows alone would give a NaN loss. An
epoch's leftover (fewer rows than the minibatch size) is folded into its
last minibatch instead of getting an optimizer step of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from sed_meltingpot.core.optional import extra_import

with extra_import("rllib", __name__):
    from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
    from ray.rllib.core.columns import Columns
    from ray.rllib.policy.sample_batch import MultiAgentBatch

# `learner_config_dict` key: {module_id: minibatch size}.
MINIBATCH_SIZES_KEY = "minibatch_size_per_module"
LOSS_MASK = Columns.LOSS_MASK


class PerModuleMinibatchIterator:
    """Yields MultiAgentBatches; module m contributes `sizes.get(m, default)`
    samples per minibatch until each of its samples was used `num_epochs`
    times. `usage` counts, per module, how often each sample index was used
    (rows masked out of the loss: never)."""

    def __init__(self, batch: MultiAgentBatch, *, num_epochs: int, default_minibatch_size: int,
                 minibatch_sizes: dict[str, int] | None = None, shuffle: bool = True,
                 seed: int | None = None) -> None:
        self._batch = batch
        self._num_epochs = num_epochs
        self._sizes = {mid: int((minibatch_sizes or {}).get(mid, default_minibatch_size))
                       for mid in batch.policy_batches}
        for mid, size in self._sizes.items():
            if size < 1:
                raise ValueError(f"minibatch size for module {mid!r} must be >= 1, got {size}")
        self._shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self.usage = {mid: np.zeros(len(b), dtype=np.int64)
                      for mid, b in batch.policy_batches.items()}

    def _module_chunks(self, module_id: str) -> Iterator[Any]:
        module_batch = self._batch.policy_batches[module_id]
        rows, size = loss_rows(module_batch), self._sizes[module_id]
        for _ in range(self._num_epochs):
            order = self._rng.permutation(rows) if self._shuffle else rows
            for index in epoch_chunks(order, size):
                self.usage[module_id][index] += 1
                yield _take(module_batch, index)

    def __iter__(self) -> Iterator[MultiAgentBatch]:
        generators = {mid: self._module_chunks(mid) for mid in self._batch.policy_batches}
        sentinel = object()
        for chunks in itertools.zip_longest(*generators.values(), fillvalue=sentinel):
            minibatch = {mid: chunk for mid, chunk in zip(generators, chunks, strict=True)
                         if chunk is not sentinel}
            yield MultiAgentBatch(minibatch, len(self._batch))


def loss_rows(module_batch: Any) -> np.ndarray:
    """Indices of the rows that enter the loss: those whose `loss_mask` is
    set, or all rows if the batch has no mask."""
    mask = module_batch.get(LOSS_MASK) if hasattr(module_batch, "get") else None
    if mask is None:
        return np.arange(len(module_batch))
    if hasattr(mask, "detach"):  # torch tensor
        mask = mask.detach().cpu().numpy()
    return np.flatnonzero(np.asarray(mask).astype(bool))


def epoch_chunks(order: np.ndarray, size: int) -> list[np.ndarray]:
    """`order` cut into max(1, len // size) minibatches of `size` rows, the
    leftover (< size rows) joining the last one; [] for no rows."""
    if not len(order):
        return []
    count = max(1, len(order) // size)
    return [order[k * size:(k + 1) * size if k < count - 1 else len(order)]
            for k in range(count)]


def _take(module_batch: Any, index: np.ndarray) -> Any:
    """Rows `index` of a SampleBatch (numpy or torch columns, nested dicts)."""
    with extra_import("rllib", __name__):
        import torch
        import tree  # dm-tree, an RLlib dependency

    def pick(column: Any) -> Any:
        if hasattr(column, "device"):  # torch tensor

            return column[torch.as_tensor(index, device=column.device)]
        return np.asarray(column)[index]

    out = module_batch.copy(shallow=True)
    for key in list(out.keys()):
        value = out[key]
        if key == "seq_lens" or value is None:
            continue
        out[key] = tree.map_structure(pick, value)
    out.count = len(index)
    return out


class SEDPPOTorchLearner(PPOTorchLearner):
    """PPOTorchLearner using `PerModuleMinibatchIterator`.

    RLlib logs each module's total loss after the last minibatch only, where
    the principal has usually sat out; here every module's total loss is
    logged from each minibatch it is in (the last one is reported).
    """

    def compute_loss_for_module(self, *, module_id: str, config: Any, batch: dict,
                                fwd_out: dict) -> Any:
        loss = super().compute_loss_for_module(module_id=module_id, config=config, batch=batch,
                                               fwd_out=fwd_out)
        self.metrics.log_value((module_id, self.TOTAL_LOSS_KEY), loss.detach(), window=1)
        return loss

    def _create_iterator_if_necessary(self, *, training_data, num_total_minibatches: int = 0,
                                      num_epochs: int = 1, minibatch_size: int | None = None,
                                      shuffle_batch_per_epoch: bool = False, **kwargs):
        if training_data.data_iterators or not minibatch_size:
            return super()._create_iterator_if_necessary(
                training_data=training_data, num_total_minibatches=num_total_minibatches,
                num_epochs=num_epochs, minibatch_size=minibatch_size,
                shuffle_batch_per_epoch=shuffle_batch_per_epoch, **kwargs)
        batch = self._make_batch_if_necessary(training_data=training_data)
        for module_id in list(batch.policy_batches.keys()):
            if not self.should_module_be_updated(module_id, batch):
                del batch.policy_batches[module_id]
        if not batch.policy_batches:
            return {}
        batch = self._set_slicing_by_batch_id(batch, value=True)
        sizes = dict((self.config.learner_config_dict or {}).get(MINIBATCH_SIZES_KEY, {}))
        return PerModuleMinibatchIterator(
            batch, num_epochs=num_epochs, default_minibatch_size=minibatch_size,
            minibatch_sizes=sizes, shuffle=shuffle_batch_per_epoch, seed=self._shuffle_seed())

    def _shuffle_seed(self) -> int | None:
        """Seed of this update's minibatch shuffle: drawn from a generator
        seeded once with the run's seed (`config.seed`, i.e. --seed), so a run
        is reproducible and each update still gets its own order."""
        if not hasattr(self, "_shuffle_rng"):
            self._shuffle_rng = np.random.default_rng(self.config.seed)
        if self.config.seed is None:
            return None
        return int(self._shuffle_rng.integers(2**63))
