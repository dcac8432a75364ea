"""The drawing kit every figure shares: style and palette, text measurement, the diagram canvas, difference marks."""
