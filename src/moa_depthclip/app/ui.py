"""The Gradio page of ``moa-depthclip app`` (imported only when the app starts: Gradio is slow to import).

Layout: upload (one or several images) | model, optional second model to compare, colour map |
"Estimate depth" -> a message (what ran, warnings, skipped uploads), a comparison slider (image vs
coloured depth of the first image; the depth alone where the installed Gradio has no ImageSlider),
the panels (image | coloured depth with a colour bar in metres, per model) and the downloads.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from moa_depthclip.app.handlers import AppResult, ModelCache, estimate, model_entries, stack_panels
from moa_depthclip.visualize import DEFAULT_CMAP, SUGGESTED_COLORMAPS

NO_COMPARISON = "(none)"
TITLE = "MoA-DepthCLIP: metric depth from one image"


def build_app(model_specs: Sequence[str], device: str = "cpu", out_root: str | None = None) -> Any:
    """The Gradio Blocks of the page, serving ``model_specs`` (plus the random model)."""
    import gradio as gr

    entries = model_entries(model_specs)
    labels = {entry.spec: entry.label for entry in entries}
    choices = [(entry.label, entry.spec) for entry in entries]
    cache = ModelCache(device)

    def run(files: Any, model_spec: str, compare_spec: str, cmap: str) -> tuple[Any, ...]:
        paths = [getattr(f, "name", f) for f in (files or [])]
        result: AppResult = estimate(
            paths,
            cache,
            model_spec,
            None if compare_spec == NO_COMPARISON else compare_spec,
            cmap or DEFAULT_CMAP,
            out_root=out_root,
            labels=labels,
        )
        sheet = stack_panels(result.panels, top=28)  # room for the label drawn over the image
        slider = result.slider
        if has_slider:
            slider_value = slider
        else:
            slider_value = None if slider is None else slider[1]
        return result.message, slider_value, sheet, result.files or None

    has_slider = hasattr(gr, "ImageSlider")
    with gr.Blocks(title=TITLE) as page:
        gr.Markdown(
            f"# {TITLE}\n"
            "Upload photos, pick a model, and get depth in **metres**: a coloured picture with a colour "
            "bar, a 16-bit PNG in millimetres, a .npy in metres and a .ply point cloud. "
            "Models marked RANDOM are untrained and only show that the app works."
        )
        with gr.Row():
            with gr.Column(scale=1):
                files = gr.File(
                    label="images", file_count="multiple", file_types=["image"], elem_id="uploads"
                )
                model = gr.Dropdown(choices, value=entries[0].spec, label="model", elem_id="model")
                compare = gr.Dropdown(
                    [(NO_COMPARISON, NO_COMPARISON), *choices],
                    value=NO_COMPARISON,
                    label="compare with (side by side)",
                    elem_id="compare",
                )
                cmap = gr.Dropdown(
                    list(SUGGESTED_COLORMAPS), value=DEFAULT_CMAP, label="colour map", allow_custom_value=True
                )
                button = gr.Button("Estimate depth", variant="primary", elem_id="run")
            with gr.Column(scale=2):
                message = gr.Markdown(elem_id="message")
                if has_slider:
                    slider = gr.ImageSlider(label="image | depth (drag to compare)", elem_id="slider")
                else:
                    slider = gr.Image(label="depth", elem_id="slider")
                panels = gr.Image(
                    label="image | depth (m), per image and model", elem_id="panels", interactive=False
                )
                downloads = gr.File(label="downloads: 16-bit PNG (mm), .npy (m), .ply", elem_id="downloads")
        button.click(run, [files, model, compare, cmap], [message, slider, panels, downloads])
    return page


def launch(
    model_specs: Sequence[str],
    host: str = "127.0.0.1",
    port: int = 7860,
    device: str = "cpu",
    max_file_size: str = "60mb",
    block: bool = True,
) -> Any:
    """Start the page on ``host:port`` (localhost by default); returns the Blocks."""
    page = build_app(model_specs, device)
    page.queue(default_concurrency_limit=1)
    options: dict[str, Any] = {"footer_links": []}  # Gradio 6; older versions have show_api instead
    accepted = inspect.signature(page.launch).parameters
    options = {key: value for key, value in options.items() if key in accepted}
    page.launch(
        server_name=host,
        server_port=port,
        max_file_size=max_file_size,
        prevent_thread_lock=not block,
        show_error=False,
        quiet=not block,
        **options,
    )
    return page
