"""Plotly figures of traces and runs, one family per module, re-exported here."""

from .kit.style import BAD, INK, MUTED, OFF, OK, PAPER
from .architecture import architecture_figure
from .bars import level_bars_figure
from .blocks import block_figure
from .compare import (
    COMPARE_TABLE_HEADERS,
    compare_architecture_figures,
    compare_heatmaps_figure,
    compare_highlight,
    compare_table_rows,
)
from .export import design_filename, plot_json
from .fields import receptive_field_figure
from .heatmaps import heatmap_grid_figure
from .message import message_figure
from .space import cost_figure, sizes_figure, sweep_figure
from .theme import THEMES, apply_theme

__all__ = ["BAD", "COMPARE_TABLE_HEADERS", "INK", "MUTED", "OFF", "OK", "PAPER", "THEMES", "apply_theme",
           "architecture_figure", "block_figure", "compare_architecture_figures", "compare_heatmaps_figure",
           "compare_highlight", "compare_table_rows", "design_filename", "heatmap_grid_figure",
           "level_bars_figure", "message_figure", "plot_json", "receptive_field_figure", "cost_figure", "sizes_figure",
           "sweep_figure"]
