"""resfpn explorer (placeholder until the app lands)."""

import gradio as gr

with gr.Blocks(title="resfpn") as demo:
    gr.Markdown("# resfpn\nThe explorer is being built; `python -m resfpn --help` works today.")

if __name__ == "__main__":
    demo.launch()
