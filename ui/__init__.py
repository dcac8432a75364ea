"""The explorer page's parts (Gradio): one module per view, the API endpoints, and the one way into
the library (``ui.library``). Logic lives in ``resfpn/``; ``app.py`` lays the parts out."""
