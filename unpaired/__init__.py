"""unpaired: unpaired image-to-image translation with attention (AttentionGAN, U-GAT-IT, CycleGAN).

Public API: ``Translator`` (load a run folder or checkpoint, translate images, get attention maps),
``load_model`` and ``__version__``. Nothing heavy is imported until used.
"""

__version__ = "0.1.0"

__all__ = ["Translator", "load_model", "__version__"]


def __getattr__(name):
    if name in ("Translator", "load_model"):
        from . import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'unpaired' has no attribute {name!r}")
