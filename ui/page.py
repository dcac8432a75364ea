"""The page's own CSS and script, passed to ``demo.launch``: figures keep their measured width
(scrolling sideways on a narrow screen instead of squeezing their labels together), plot toolbars sit
above the figure, and a phone sees the design's summary and views before the controls."""

# Each figure says in layout.meta.min_width how narrow it can be drawn without its labels touching
# (resfpn.figures measures them). Gradio's Plot always autosizes to its box, so the box gets that
# min-width and the block around it scrolls sideways.
FIT_JS = """
() => {
  const fit = (gd) => {
    const w = gd.layout && gd.layout.meta && gd.layout.meta.min_width;
    const want = w ? w + "px" : "";
    if (gd.style.minWidth !== want) {
      gd.style.minWidth = want;
      if (window.Plotly) window.Plotly.Plots.resize(gd);
    }
  };
  const seen = new WeakSet();
  const watch = () => document.querySelectorAll(".resfpn-plot .js-plotly-plot").forEach((gd) => {
    if (!seen.has(gd) && gd.on) {
      seen.add(gd);
      gd.on("plotly_afterplot", () => fit(gd));
    }
    if (gd.layout) fit(gd);
  });
  new MutationObserver(watch).observe(document.body, {childList: true, subtree: true});
  watch();
}
"""

CSS = """
.resfpn-plot { padding-top: 34px !important; }
.resfpn-plot > div:has(> .js-plotly-plot), .resfpn-plot .js-plotly-plot { overflow-x: auto; }
.resfpn-plot:has(.js-plotly-plot) { overflow-x: auto; }
#preset input { padding-right: 2.2em; text-overflow: ellipsis; }
.refusal { border-left: 4px solid #dc2626; padding-left: 0.6em; }
"""
