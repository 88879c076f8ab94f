"""PPO learner whose minibatches are sized per module.

RLlib's `MiniBatchCyclicIterator` gives every module `minibatch_size`
samples in every minibatch and cycles a small module's data to fill them.
The principal decides once per tax period (4 decisions per 200-step
fragment), so its few samples were each trained on hundreds of times per
iteration. Here each module is cut into its own minibatch size, every sample
is used exactly `num_epochs` times per update, and a module whose data runs
out first simply sits out the remaining minibatches.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.policy.sample_batch import MultiAgentBatch

# `learner_config_dict` key: {module_id: minibatch size}.
MINIBATCH_SIZES_KEY = "minibatch_size_per_module"


class PerModuleMinibatchIterator:
    """Yields MultiAgentBatches; module m contributes `sizes.get(m, default)`
    samples per minibatch until each of its samples was used `num_epochs`
    times. `usage` counts, per module, how often each sample index was used."""

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
        n, size = len(module_batch), self._sizes[module_id]
        for _ in range(self._num_epochs):
            order = self._rng.permutation(n) if self._shuffle else np.arange(n)
            for start in range(0, n, size):
                index = order[start:start + size]
                self.usage[module_id][index] += 1
                yield _take(module_batch, index)

    def __iter__(self) -> Iterator[MultiAgentBatch]:
        generators = {mid: self._module_chunks(mid) for mid in self._batch.policy_batches}
        sentinel = object()
        for chunks in itertools.zip_longest(*generators.values(), fillvalue=sentinel):
            minibatch = {mid: chunk for mid, chunk in zip(generators, chunks, strict=True)
                         if chunk is not sentinel}
            yield MultiAgentBatch(minibatch, len(self._batch))


def _take(module_batch: Any, index: np.ndarray) -> Any:
    """Rows `index` of a SampleBatch (numpy or torch columns, nested dicts)."""
    import tree  # dm-tree, an RLlib dependency

    def pick(column: Any) -> Any:
        if hasattr(column, "device"):  # torch tensor
            import torch

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
    """PPOTorchLearner using `PerModuleMinibatchIterator`."""

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
            minibatch_sizes=sizes, shuffle=shuffle_batch_per_epoch)
