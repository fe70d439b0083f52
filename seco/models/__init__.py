"""Models: ResNet backbones (``resnet``), projection heads, the negative queue, the EMA key side, the
contrastive model of every method (``contrastive``), the change-detection decoder (``unet``), safe reading of
torch files (``safe_load``), the official SeCo checkpoints (``official``) and exported backbones (``export``).

Imports torch only (never ``seco.data``, ``seco.store`` or ``seco.collect``). Import the submodules directly;
this package imports nothing.
"""
