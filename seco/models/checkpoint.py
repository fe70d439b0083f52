"""Checkpoints and exported weights: one import point for the three modules that do the work.

- :mod:`seco.models.safe_load`: reading torch files without executing pickled code
  (``torch.load(weights_only=True)``, then a restricted unpickler), and :func:`to_safe` for writing files
  that the safe loader reads back.
- :mod:`seco.models.official`: import of the official SeCo checkpoints (key mapping, config, export).
- :mod:`seco.models.export`: exported backbones (``.safetensors`` + ``.pth`` + ``.json`` sidecar).

Every name below is re-exported so ``from seco.models.checkpoint import ...`` keeps working.
"""

from __future__ import annotations

from seco.models.export import (
    EXPORT_FORMAT,
    EXPORT_SUFFIXES,
    FORMAT_VERSION,
    REQUIRED_META,
    backbone_arch,
    export_backbone,
    load_exported,
)
from seco.models.official import (
    backbone_from_official,
    load_official_checkpoint,
    load_official_state_dict,
    map_official_key,
    model_from_official,
    official_config,
    official_meta,
    official_normalization,
    to_official_state_dict,
)
from seco.models.safe_load import ALLOWED_GLOBALS, describe_file, plain, read_torch_file, to_safe

__all__ = [
    "ALLOWED_GLOBALS",
    "EXPORT_FORMAT",
    "EXPORT_SUFFIXES",
    "FORMAT_VERSION",
    "REQUIRED_META",
    "backbone_arch",
    "backbone_from_official",
    "describe_file",
    "export_backbone",
    "load_exported",
    "load_official_checkpoint",
    "load_official_state_dict",
    "map_official_key",
    "model_from_official",
    "official_config",
    "official_meta",
    "official_normalization",
    "plain",
    "read_torch_file",
    "to_official_state_dict",
    "to_safe",
]
