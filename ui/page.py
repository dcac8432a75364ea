"""The page's own CSS and script, passed to ``demo.launch``: figures keep their measured width
(scrolling sideways on a narrow screen instead of squeezing their labels together), plot toolbars sit
above the figure, and a phone sees the design's summary and views before the controls."""

from collections import defaultdict

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
  // A phone: the controls (below the results, see CSS) start folded.
  if (window.innerWidth < NARROW_PX) {
    const fold = () => {
      const open = document.querySelectorAll("#controls .label-wrap.open");
      open.forEach((b) => b.click());
      return open.length > 0;
    };
    let tries = 0;
    const timer = setInterval(() => { if (fold() || ++tries > 50) clearInterval(timer); }, 100);
  }
}
""".replace("NARROW_PX", "700")

CSS = """
.resfpn-plot { padding-top: 34px !important; }
.resfpn-plot > div:has(> .js-plotly-plot), .resfpn-plot .js-plotly-plot { overflow-x: auto; }
.resfpn-plot:has(.js-plotly-plot) { overflow-x: auto; }
@media (max-width: 699px) {
  #results { order: -1; }
  #intro h1 { font-size: 1.35em; margin-bottom: 0.2em; }
  #intro p { display: none; }
  #controls { min-width: 100% !important; }
}
#preset input, #weights input, #p6 input { padding-right: 2.2em; text-overflow: ellipsis; }  /* clear of the arrow */
.refusal { border-left: 4px solid #dc2626; padding-left: 0.6em; }
"""


class _NoEstimate(defaultdict):
    """Gradio's queue remembers each event's mean duration and shows it as a time estimate
    ("10.4/0.6s" on a heavy run after light ones). Runs here differ by orders of magnitude (cached
    or not, any design), so the page shows the phase it is in instead, and the queue no estimate."""

    def __contains__(self, key: object) -> bool:
        return False


def no_time_estimates(demo) -> None:
    """Call after ``demo.queue()``: the queue sends no estimated time (eta is None everywhere)."""
    demo._queue.process_time_per_fn = _NoEstimate(demo._queue.process_time_per_fn.default_factory)
