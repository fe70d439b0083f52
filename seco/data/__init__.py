"""Datasets and transforms. Every sample is a dict of tensors; images are ``T x C x H x W``.

- ``transforms``: multispectral augmentations on batched reflectance (CPU or GPU).
- ``views``: the views of SeCo / MoCo-v2 / MoCo-v2+TP as ``ViewRecipe`` data.
- ``normalize``: per-band ``Normalization`` (reflectance units), stored with data and weights.
- ``pretrain``: the store-backed ``PretrainDataset`` and the resumable, sharded ``ResumableSampler``.
- ``eurosat``, ``bigearthnet``, ``oscd``: evaluation datasets, each documenting the layout it reads.

Import the submodules directly (``from seco.data.views import recipe_for``); this package imports nothing.
"""
