"""The web demo: upload an image (or pick a test image), choose the direction (multi-domain models: the
target domain), see the translation beside the input and the model's attention as an overlay.

``unpaired demo --checkpoint RUN`` serves it on http://127.0.0.1:7860 (this machine only unless ``--host``
says otherwise). Needs the ``[demo]`` extra (Gradio 6). Nothing leaves the machine: Gradio's analytics
and version check are switched off before Gradio is imported, the default theme's fonts are served
locally, and no share link is made.

* one translation at a time (``queue(default_concurrency_limit=1)``); further requests wait in the queue;
* uploads larger than ``--max-upload-mb`` are refused by the server; images whose long side exceeds
  ``max_side`` pixels are shrunk first, so one huge photo cannot hold the CPU for minutes;
* outputs are sent as PNG, so what the page shows is exactly what ``Translator`` returned.

Tests build the page with :func:`build_demo` and start it in-process with :func:`launch_demo`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no telemetry, no version check

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from .data.images import max_pixels as default_max_pixels  # noqa: E402
from .host_memory import release_freed_memory  # noqa: E402
from .visualize import grey_image  # noqa: E402

__all__ = ["build_demo", "launch_demo", "find_examples", "check_payload"]

EXAMPLES_PER_DOMAIN = 6
# small training-size images are scaled up to fill their panels (pixelated, so no detail is invented)
CSS = """
#input-image img, #translation img, #attention-overlay img {
  width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }
#attention-masks img { image-rendering: pixelated; }
"""
DOMAIN_DIRECTIONS = (("testA", "AtoB"), ("testB", "BtoA"))


def find_examples(run_dir: Optional[Path] = None, data: Optional[Path] = None,
                  directions: Sequence[str] = ("AtoB", "BtoA"), per_domain: int = EXAMPLES_PER_DOMAIN,
                  domains: Optional[Sequence[str]] = None) -> List[Tuple[str, str]]:
    """(image path, choice) pairs from the test images: ``data`` or the run's ``config.yaml`` ``data.root``;
    ``testA`` images go A→B, ``testB`` images B→A. With ``domains`` (a multi-domain model), the images of
    ``test/<domain>/`` go to the next domain of the list. Empty when the folder is not found."""
    from .data import list_images

    root = Path(data) if data else _data_root_of(run_dir)
    if root is None:
        return []
    examples = []
    if domains:
        for k, domain in enumerate(domains):
            if (root / "test" / domain).is_dir():
                target = domains[(k + 1) % len(domains)]
                examples += [(str(p), target) for p in list_images(root / "test" / domain)[:per_domain]]
        return examples
    for folder, direction in DOMAIN_DIRECTIONS:
        if direction in directions and (root / folder).is_dir():
            examples += [(str(p), direction) for p in list_images(root / folder)[:per_domain]]
    return examples


def _data_root_of(run_dir: Optional[Path]) -> Optional[Path]:
    """The dataset folder a run was trained on (as written, or relative to the run's parent folder)."""
    from .runfolder import read_config

    if run_dir is None or not (Path(run_dir) / "config.yaml").is_file():
        return None
    root = (read_config(run_dir).get("data") or {}).get("root")
    if not root:
        return None
    for candidate in (Path(root), Path(run_dir).parent / root):
        if candidate.is_dir():
            return candidate
    return None


def _describe(translator) -> str:
    card = next(iter(translator.cards.values()), None)
    parts = [f"**{card.model if card else 'model'}**"]
    if card is not None:
        parts.append(f"{card.step} training steps")
    return ", ".join(parts)


def _shrink(image: Image.Image, max_side: int) -> Image.Image:
    if max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


def _grey(mask: np.ndarray) -> Image.Image:
    return grey_image(mask)


def _source_label(choice: str, domains: Optional[Sequence[str]]) -> str:
    if domains:  # examples of a domain are translated to the next one
        return f"test images of {domains[domains.index(choice) - 1]} (click: to {choice})"
    return f"test images of domain {choice[0]} (click: {choice})"


def _with_direction(translate, direction: str):
    def run(image):
        return (*translate(image, direction), direction)

    return run


def check_payload(payload, max_bytes: int, max_pixels: int) -> None:
    """Refuse (``gr.Error``) an image sent to the server, before Gradio decodes it, whose bytes exceed
    ``max_bytes`` or whose header declares more than ``max_pixels`` pixels: uploaded files and base64 ``data:``
    URLs sent to the API alike."""
    import base64
    import io

    url, path = getattr(payload, "url", None), getattr(payload, "path", None)
    if url and url.startswith("data:"):
        data = url.partition(",")[2]
        if len(data) * 3 // 4 > max_bytes:
            raise gr.Error(f"image of about {len(data) * 3 // 4 / 2**20:.1f} MB refused: the limit is "
                           f"{max_bytes / 2**20:g} MB")
        try:
            source = io.BytesIO(base64.b64decode(data, validate=False))
        except ValueError:
            raise gr.Error("image refused: not valid base64") from None
    elif path:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise gr.Error(f"image of {size / 2**20:.1f} MB refused: the limit is {max_bytes / 2**20:g} MB")
        source = path
    else:
        return
    try:
        with Image.open(source) as im:  # the header only: nothing decoded
            width, height = im.size
    except Image.DecompressionBombError:
        raise gr.Error(f"image refused: it declares more than {max_pixels} pixels") from None
    except Exception:  # noqa: BLE001 - Gradio reports what it cannot read itself
        return
    if width * height > max_pixels:
        raise gr.Error(f"image of {width}x{height} px refused: the limit is {max_pixels} pixels")


def _capped(component, max_bytes: int, max_pixels: int):
    """``component.preprocess`` with :func:`check_payload` first (every path into the model goes through it)."""
    original = component.preprocess

    def preprocess(payload):
        check_payload(payload, max_bytes, max_pixels)
        return original(payload)

    component.preprocess = preprocess
    return component


def build_demo(translator, examples: Sequence[Tuple[str, str]] = (), max_upload_mb: float = 10.0, *,
               max_side: int = 1024, title: str = "unpaired: image-to-image translation",
               max_pixels: Optional[int] = None) -> gr.Blocks:
    """The demo page for ``translator`` (a :class:`unpaired.Translator`).

    examples: (image path, direction or target domain) pairs shown under the input; clicking one translates it.
    max_upload_mb: the server refuses larger uploads (applied by :func:`launch_demo`).
    max_pixels: images declaring more pixels are refused before decoding (default: ``UNPAIRED_MAX_PIXELS``,
    Pillow's warning threshold); uploads and base64 ``data:`` URLs alike, by bytes and by pixels.
    Element ids for scripts and tests: ``input-image``, ``direction``, ``translate-button``,
    ``translation``, ``attention-overlay``, ``attention-masks``, ``status``.
    """
    domains = translator.domains  # a multi-domain model: the choice is the target domain
    fixed = domains and next(iter(translator.cards.values())).target_domain  # an export with a built-in target
    directions = [fixed] if fixed else list(domains or translator.generators)
    choice = "target domain" if domains else "direction"  # what the radio buttons pick

    def translate(image: Optional[Image.Image], direction: str):
        if image is None:
            raise gr.Error("upload an image first (or click an example)")
        if direction not in directions:
            raise gr.Error(f"{choice} {direction!r} is not in this checkpoint ({', '.join(directions)})")
        original = image.size
        image = _shrink(image.convert("RGB"), max_side)
        start = time.perf_counter()
        result = (translator.translate(image, target=direction) if domains
                  else translator.translate(image, direction))
        seconds = time.perf_counter() - start
        release_freed_memory()  # a large request's memory goes back to the system
        masks = [] if result.masks is None or len(result.masks) < 2 else [
            (_grey(m), "background" if k == len(result.masks) - 1 else f"mask {k + 1}")
            for k, m in enumerate(result.masks)]
        if result.masks is not None:
            kind = f"{len(result.masks)} attention mask(s); the overlay shows the foreground"
        elif result.attention is not None:
            kind = "the overlay shows the CAM heatmap"
        else:
            kind = "this model has no attention maps"
        shrunk = f" (shrunk from {original[0]}×{original[1]})" if image.size != original else ""
        size = f"{image.width}×{image.height}{shrunk}"
        tiles = ", in tiles (over the memory budget: unpaired/tiling)" if result.tiled else ""
        status = f"{'to ' if domains else ''}{direction}: {size} in {seconds:.2f} s{tiles}; {kind}."
        return result.image, result.overlay(), masks, status

    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.Markdown(f"# {title}\n{_describe(translator)}. Upload an image or click an example, choose the "
                    f"{choice}, press **Translate**. Uploads up to {max_upload_mb:g} MB; images larger than "
                    f"{max_side} px are shrunk.")
        with gr.Row(equal_height=True):
            source = gr.Image(label="input", type="pil", image_mode="RGB", sources=["upload", "clipboard"],
                              format="png", height=320, elem_id="input-image")
            _capped(source, int(max_upload_mb * 1024 * 1024), max_pixels or default_max_pixels())
            translation = gr.Image(label="translation", type="pil", format="png", interactive=False,
                                   height=320, elem_id="translation")
            overlay = gr.Image(label="attention overlay (red = attended)", type="pil", format="png",
                               interactive=False, height=320, elem_id="attention-overlay")
        with gr.Row():
            direction = gr.Radio(directions, value=directions[0], label=choice, elem_id="direction")
            button = gr.Button("Translate", variant="primary", elem_id="translate-button")
        status = gr.Markdown(elem_id="status")
        masks = gr.Gallery(label="attention masks (AttentionGAN: each mask; the last keeps the input)",
                           format="png", columns=10, height=170, object_fit="contain", fit_columns=False,
                           elem_id="attention-masks")
        outputs = [translation, overlay, masks, status]
        button.click(translate, inputs=[source, direction], outputs=outputs, api_name="translate")
        for domain_direction in directions:  # one gallery of examples per direction; a click translates
            paths = [[path] for path, d in examples if d == domain_direction]
            if paths:
                gr.Examples(examples=paths, inputs=[source], outputs=outputs + [direction],
                            fn=_with_direction(translate, domain_direction), run_on_click=True,
                            cache_examples=False, examples_per_page=EXAMPLES_PER_DOMAIN,
                            label=_source_label(domain_direction, domains),
                            elem_id=f"examples-{domain_direction}")
    demo.queue(default_concurrency_limit=1, max_size=32)
    demo.unpaired_max_upload_mb = max_upload_mb
    return demo


def launch_demo(demo: gr.Blocks, host: str = "127.0.0.1", port: Optional[int] = 7860,
                max_upload_mb: Optional[float] = None, block: bool = True):
    """Serve ``demo`` on ``host:port`` with the upload cap; ``block=False`` returns at once (tests)."""
    mb = max_upload_mb if max_upload_mb is not None else getattr(demo, "unpaired_max_upload_mb", 10.0)
    return demo.launch(server_name=host, server_port=port, share=False, inbrowser=False, quiet=not block,
                       max_file_size=int(mb * 1024 * 1024), prevent_thread_lock=not block, ssr_mode=False,
                       mcp_server=False, pwa=False, show_error=True, css=CSS)
