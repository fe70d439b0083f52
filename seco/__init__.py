"""seco: Seasonal Contrast pre-training on multispectral Sentinel-2 imagery."""
__version__ = "0.1.0"
