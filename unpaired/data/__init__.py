"""Data loading: robust image reading, CycleGAN transforms, unpaired folder datasets and a
synthetic two-domain dataset with ground-truth masks."""

from .folders import EndlessSampler, ImageFiles, UnpairedFolders, endless_loader, test_split
from .images import IMAGE_EXTENSIONS, BadImageError, check_dataset, check_files, check_folder, list_images, load_rgb
from .synthetic import make_synthetic, synthetic_pair
from .transforms import RESAMPLE, TestTransform, TrainTransform, to_pil, to_tensor

__all__ = [
    "IMAGE_EXTENSIONS",
    "BadImageError",
    "load_rgb",
    "list_images",
    "check_folder",
    "check_files",
    "check_dataset",
    "RESAMPLE",
    "to_tensor",
    "to_pil",
    "TrainTransform",
    "TestTransform",
    "UnpairedFolders",
    "EndlessSampler",
    "ImageFiles",
    "test_split",
    "endless_loader",
    "make_synthetic",
    "synthetic_pair",
]
