"""Latency against size: measured through the engine's served path, cached, fitted to MACs."""

from resfpn import Config
from resfpn.serving import latency
from resfpn.serving.engine import Engine
from resfpn.shapes.sizes import size_map


def test_measure_times_sizes_that_build_caches_and_fits():
    config = Config(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1), stem_width=8, fpn_width=8, input_height=225)
    sizes = latency.sizes_to_time(config, sides=(64, 100))
    m = size_map(config)
    assert sizes == [(64, 64), (96, 96)] and all(m.builds("x2", h, w) for h, w in sizes)
    engine = Engine()
    result = latency.measure(engine, config, sizes=sizes, repeats=1)
    forwards = engine.forwards
    assert forwards == 3  # one warm-up at the first size, then one timed run per size
    assert [(p["height"], p["width"]) for p in result["points"]] == sizes
    assert all(p["seconds"] > 0 for p in result["points"]) and result["points"][1]["macs"] > result["points"][0]["macs"]
    assert latency.measure(engine, config, sizes=sizes) is result and engine.forwards == forwards  # cached
    a, b = result["fit"]
    for p in result["points"]:  # two points: the line goes through both
        assert abs(a + b * p["macs"] - p["seconds"]) < 1e-6
    assert "cpu" in result["device"]


def test_fit_of_one_point_is_proportional():
    assert latency.fit([{"macs": 10, "seconds": 2.0}]) == (0.0, 0.2)
