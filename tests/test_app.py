"""The app's handlers, called directly as Gradio would call them."""

import gradio as gr
import plotly.graph_objects as go
import pytest

import app
from resfpn import Config

EXAMPLE = str(app.EXAMPLES[0])
DISPLAY = ["mean", 0, True, 0.6, "Viridis", False]


def controls(**changes):
    return app.controls_from_config(Config(**changes))


def _outputs(values):
    keys = ["arch", "block", "bars", "summary", "mismatch", "skip_note", "fixes", "report"]
    return dict(zip(keys, values)) | {"buttons": values[len(keys):]}


def test_controls_round_trip_every_config_field():
    config = Config.preset("retinanet", input_height=300, input_width=500)
    assert app.config_from_controls(app.controls_from_config(config)) == config
    assert len(app.CONTROLS) == len(app.controls_from_config(config))


def test_architecture_change_updates_shape_figures_without_a_forward():
    before = app.engine().forwards
    out = _outputs(app.on_architecture(*controls(input_height=320, input_width=256)))
    assert isinstance(out["arch"], go.Figure) and isinstance(out["block"], go.Figure) and isinstance(out["bars"], go.Figure)
    assert "256×80×64" in out["arch"].to_json()  # P2 at 320×256
    assert out["report"]["levels"]["P2"]["shape"] == [1, 256, 80, 64]
    assert "Every addition holds" in out["mismatch"]
    assert all(b["visible"] is False for b in out["buttons"])
    assert app.engine().forwards == before


def test_run_gives_heatmaps_for_every_level_and_display_changes_do_not_rerun():
    values = controls(input_height=128, input_width=128, p7=True)
    fig, rows, status, state = app.on_run(*values, EXAMPLE, "random", 0, None, *DISPLAY)
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert len(heatmaps) == len(Config(p7=True).levels) == 10
    assert [r[0] for r in rows] == list(Config(p7=True).levels)
    assert "seeded random weights (seed 0)" in status and "resized" in status
    forwards = app.engine().forwards
    for display in (["l2", 0, False, 0.6, "Inferno", True], ["channel", 5, True, 0.3, "Cividis", False]):
        fig2, _ = app.on_display(state, *display)
        assert len([t for t in fig2.data if t.type == "heatmap"]) == 10
    assert app.engine().forwards == forwards  # no new forward for display-only changes
    app.on_run(*values, EXAMPLE, "random", 0, None, *DISPLAY)
    assert app.engine().forwards == forwards  # same architecture, weights and image: cached


def test_mismatch_is_shown_with_fixes_that_work():
    out = _outputs(app.on_architecture(*controls(input_height=225, input_width=225)))
    assert "Shape mismatch at FPN merge into P4" in out["mismatch"]
    assert "15" in out["mismatch"] and "16" in out["mismatch"]
    labels = [b["value"] for b in out["buttons"] if b["visible"]]
    assert labels[0] == "use input 224×224" and any("match" in label for label in labels)
    fixed = app.on_fix(0, out["fixes"], *controls(input_height=225, input_width=225))
    n = len(app.CONTROLS)
    assert fixed[:2] == [224, 224]
    assert "Every addition holds" in _outputs(fixed[n:])["mismatch"]
    fixed = app.on_fix(2, out["fixes"], *controls(input_height=225, input_width=225))
    assert fixed[app.CONTROLS.index("policy")] == "match"


def test_run_refuses_a_mismatched_design_with_a_readable_error():
    with pytest.raises(gr.Error, match="FPN merge into P4"):
        app.on_run(*controls(input_height=225, input_width=225), EXAMPLE, "random", 0, None, *DISPLAY)


@pytest.mark.parametrize(
    "changes, match",
    [({"input_height": None}, "Input height H is empty"), ({"widths.1": 0}, r"widths\[1\]=0"),
     ({"fpn_width": 99999}, "fpn_width=99999: must be between")],
)
def test_bad_values_are_readable_errors(changes, match):
    values = controls()
    for name, value in changes.items():
        values[app.CONTROLS.index(name)] = value
    with pytest.raises(gr.Error, match=match):
        app.on_architecture(*values)


def test_bad_image_is_a_readable_error(tmp_path):
    bad = tmp_path / "photo.png"
    bad.write_text("not an image")
    with pytest.raises(gr.Error, match="This file cannot be used"):
        app.on_run(*controls(input_height=64, input_width=64), str(bad), "random", 0, None, *DISPLAY)
    with pytest.raises(gr.Error, match="Choose an example image"):
        app.on_run(*controls(), None, "random", 0, None, *DISPLAY)


def test_preset_sets_every_control():
    out = app.on_preset("retinanet")
    config = app.config_from_controls(out[: len(app.CONTROLS)])
    assert config == Config.preset("retinanet")


def test_checkpoint_weights_are_loaded_and_named(tmp_path):
    import torch

    from resfpn import build_model

    config = Config(input_height=64, input_width=64)
    sd = {"conv1.weight": build_model(config, seed=7).backbone.stem.conv.weight.detach()}
    path = tmp_path / "stem.pth"
    torch.save(sd, path)
    _, _, status, _ = app.on_run(*app.controls_from_config(config), EXAMPLE, "checkpoint", 0, str(path), *DISPLAY)
    assert "checkpoint stem.pth" in status and "loaded 1 tensors" in status
    bad = tmp_path / "other.pth"
    torch.save({"conv1.weight": torch.zeros(8, 3, 3, 3)}, bad)
    with pytest.raises(gr.Error, match=r"conv1\.weight .*checkpoint \(8, 3, 3, 3\) vs model \(64, 3, 7, 7\)"):
        app.on_run(*app.controls_from_config(config), EXAMPLE, "checkpoint", 0, str(bad), *DISPLAY)


def test_a_checkpoint_that_would_run_code_is_refused_and_the_app_keeps_working(tmp_path):
    import pickle

    class Payload:
        def __reduce__(self):
            return (print, ("this would run",))

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"conv1.weight": Payload()}, protocol=2))
    values = controls(input_height=64, input_width=64)
    with pytest.raises(gr.Error, match="refused evil.pth: it holds Python objects beyond tensors"):
        app.on_run(*values, EXAMPLE, "checkpoint", 0, str(path), *DISPLAY)
    fig, _, status, _ = app.on_run(*values, EXAMPLE, "random", 0, None, *DISPLAY)
    assert "seeded random weights" in status


def test_out_of_range_seed_is_a_readable_error():
    with pytest.raises(gr.Error, match=r"seed=-1: choose a whole number from 0 to 4294967295"):
        app.on_run(*controls(input_height=64, input_width=64), EXAMPLE, "random", -1, None, *DISPLAY)


def test_every_child_of_the_tabs_is_a_tab():
    """Gradio 6.31 numbers a tab by its place among all of gr.Tabs' children: a gr.State between two
    tabs made visited tabs' buttons overwrite or repeat others in the bar ("Compare, Compare, Report")."""
    tabs = [b for b in app.demo.blocks.values() if isinstance(b, gr.Tabs)]
    assert tabs
    for t in tabs:
        assert [type(c).__name__ for c in t.children if not isinstance(c, gr.Tab)] == []


def test_a_refusal_is_one_log_line_without_traceback(caplog):
    values = controls(p6="maxpool")
    values[app.CONTROLS.index("p6")], values[app.CONTROLS.index("p7")] = "none", True
    with caplog.at_level("INFO", logger="resfpn"), pytest.raises(gr.Error) as err:
        app.on_architecture(*values)
    assert err.value.print_exception is False  # Gradio prints no traceback for it
    assert [r.getMessage() for r in caplog.records] == [
        "refused: Configuration refused: p7=True needs a P6 to build on: choose p6 from 'p5-conv', 'c5-conv', 'maxpool'"]


def test_the_design_check_names_the_control_in_the_words_on_screen():
    from ui import explore

    values = controls(p6="maxpool")
    values[app.CONTROLS.index("p6")], values[app.CONTROLS.index("p7")] = "none", True
    out = explore.design_check(None, *values)
    assert out[0] == "p7" and out[1] == values  # the State the following views listen to
    info = out[2 + app.CONTROLS.index("p7")]["info"]
    assert "“P7 (3×3 s2 conv on ReLU(P6))” (ticked) needs a P6" in info and "“max-pool of P5”" in info
    assert "p7=" not in info and "'maxpool'" not in info
    summary = out[2 + len(app.CONTROLS) + 3]
    assert "This design cannot be built" in summary and "Error" not in summary
    # Once the design holds again, the note goes (and nothing else is re-sent).
    out = explore.design_check("p7", *controls())
    assert out[0] is None and out[1] == controls() and out[2 + app.CONTROLS.index("p7")]["info"] == ""
    assert all(o == gr.update() for i, o in enumerate(out[2:]) if i != app.CONTROLS.index("p7"))


def test_views_follow_the_design_state_never_a_controls_own_change():
    """The weights offer, Compare and Space follow a State the design check sets (Gradio fires its
    change from the server, once per new value), not the controls' .change, which the browser
    re-fired without end (tests/test_browser_page.py::_goes_quiet shows it)."""
    config = app.demo.get_config_file()
    design = {app.comps[n]._id for n in app.CONTROLS}
    listened = [(t[0], t[1]) for d in config["dependencies"] for t in d["targets"]]
    assert [t for t in listened if t[0] in design and t[1] == "change"] == []
    states = {c["id"] for c in config["components"] if c["type"] == "state"}
    followers = [d["api_name"] for d in config["dependencies"]
                 if any(t[0] in states and t[1] == "change" for t in d["targets"])]
    assert {"on_design", "on_compare_2", "on_space"} <= set(followers)


def test_the_queue_sends_no_time_estimate():
    """Gradio's queue shows a mean duration as an estimate ("10.4/0.6s"); the page names phases instead."""
    times = app.demo._queue.process_time_per_fn
    fn = next(iter(app.demo.fns.values()))
    times[fn].add(10.0)
    assert fn not in times  # the queue's test for "has an estimate": never true


def test_a_run_names_its_phases(monkeypatch):
    from ui import heatmaps

    seen = []

    class Recorder:
        def __call__(self, value, desc=None, **kwargs):
            seen.append(desc)

    app.on_run(*controls(input_height=64, input_width=64), EXAMPLE, "random", 0, None, *DISPLAY, "fp32",
               progress=Recorder())
    assert seen == list(heatmaps.PHASES)


def test_remember_keeps_a_streaming_handler_streaming():
    """A handler that yields (the weights download's progress) must stay a generator, so Gradio
    streams its values; its refusal is still noted for the output it replaced."""
    import inspect

    from ui.errors import remember, take

    def progress(n):
        yield "step 1"
        if n:
            raise gr.Error("the download failed: try again", title="Weights unavailable")
        yield "done"

    wrapped = remember("stream-test", progress)
    assert inspect.isgeneratorfunction(wrapped)
    assert list(wrapped(0)) == ["step 1", "done"]
    with pytest.raises(gr.Error):
        list(wrapped(1))
    assert take("stream-test") == ("Weights unavailable", "the download failed: try again")


def test_a_refusal_is_printed_once_even_after_a_library_configures_the_root_logger():
    import io
    import logging

    from ui.library import log_to_stderr, refuse

    ours, roots = io.StringIO(), io.StringIO()
    handler = log_to_stderr(ours)
    root = logging.StreamHandler(roots)
    logging.getLogger().addHandler(root)  # as logging.basicConfig() in any library would
    try:
        refuse("P7 needs a P6", "Configuration refused")
    finally:
        logging.getLogger().removeHandler(root)
        logging.getLogger("resfpn").removeHandler(handler)
        logging.getLogger("resfpn").propagate = True
    assert ours.getvalue().count("refused: Configuration refused: P7 needs a P6") == 1
    assert roots.getvalue() == ""
