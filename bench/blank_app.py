"""A blank Gradio app with one gr.Plot: the cold-start yardstick of bench item 6."""

import gradio as gr

with gr.Blocks() as demo:
    gr.Plot()

if __name__ == "__main__":
    demo.launch()
