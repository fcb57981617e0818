"""Data loading: robust image reading, CycleGAN transforms, unpaired folder datasets, multi-domain
(labelled) datasets and synthetic datasets with ground-truth masks."""

from .folders import EndlessSampler, ImageFiles, UnpairedFolders, endless_loader, load_split, test_split
from .images import IMAGE_EXTENSIONS, BadImageError, check_dataset, check_files, check_folder, list_images, load_rgb
from .multidomain import AttributeTable, MultiDomainFolders, UnknownDomainError, target_label
from .sources import complete_config, sample_inputs, train_dataset
from .synthetic import make_synthetic, make_synthetic_domains, synthetic_pair
from .synthetic_stripes import make_synthetic_stripes, stripes_pair
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
    "make_synthetic_domains",
    "MultiDomainFolders",
    "AttributeTable",
    "UnknownDomainError",
    "load_split",
    "target_label",
    "complete_config",
    "train_dataset",
    "sample_inputs",
    "synthetic_pair",
    "make_synthetic_stripes",
    "stripes_pair",
]
